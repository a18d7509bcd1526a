// Preloaded into a tier process by a test: SIGUSR2 makes it emit one process
// warning nobody expects, to show such warnings still surface; and its own
// 'warning' listener (as an APM agent's would be) says on stderr that it heard it.
process.on("SIGUSR2", () => {
  process.emitWarning("a warning the gateway did not expect", "ProbeWarning");
});
process.on("warning", (warning) => {
  if (warning.name === "ProbeWarning")
    process.stderr.write("the preload's listener heard the probe\n");
});
