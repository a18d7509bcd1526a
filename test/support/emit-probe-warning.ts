// Preloaded into a tier process by a test: SIGUSR2 makes it emit one process
// warning nobody expects, to show such warnings still surface.
process.on("SIGUSR2", () => {
  process.emitWarning("a warning the gateway did not expect", "ProbeWarning");
});
