// Multi-host test harness: see docs/testing.md.
export * from './cluster';
export * from './compare';
export { runCommand, RunResult, RunOptions, shellQuote, sleep } from './exec';
export { lvmConf, lvmLocalConf } from './lvmconf';
export { helloOk, daemonRequest } from './hello';
export { reapStaleRuns } from './resources';
