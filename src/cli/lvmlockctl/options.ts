// lvmlockctl's command line: getopt's option table, the usage text and the
// parse into Options.

import { Getopt, cAtoi, type LongOption } from '../../util/getopt';
import type { CliEnv } from './env';

const OPT_SET_REMOTE_LV_LOCK = 128;
const OPT_LV_UUID = 129;
const OPT_LOCK_MODE = 130;
const OPT_JSON = 131;
const OPT_METRICS = 132;
const OPT_HOLDERS = 133;

export const SHORT_OPTIONS = 'hqidE:D:w:k:r:Se';
export const LONG_OPTIONS: readonly LongOption[] = [
  { name: 'help', hasArg: 'none', val: 'h' },
  { name: 'quit', hasArg: 'none', val: 'q' },
  { name: 'info', hasArg: 'none', val: 'i' },
  { name: 'dump', hasArg: 'none', val: 'd' },
  { name: 'wait', hasArg: 'required', val: 'w' },
  { name: 'force', hasArg: 'required', val: 'f' },
  { name: 'kill', hasArg: 'required', val: 'k' },
  { name: 'drop', hasArg: 'required', val: 'r' },
  { name: 'gl-enable', hasArg: 'required', val: 'E' },
  { name: 'gl-disable', hasArg: 'required', val: 'D' },
  { name: 'stop-lockspaces', hasArg: 'none', val: 'S' },
  { name: 'stderr', hasArg: 'none', val: 'e' },
  { name: 'set-remote-lv-lock', hasArg: 'required', val: OPT_SET_REMOTE_LV_LOCK },
  { name: 'lv-uuid', hasArg: 'required', val: OPT_LV_UUID },
  { name: 'lock-mode', hasArg: 'required', val: OPT_LOCK_MODE },
  { name: 'json', hasArg: 'none', val: OPT_JSON },
  { name: 'metrics', hasArg: 'none', val: OPT_METRICS },
  { name: 'holders', hasArg: 'required', val: OPT_HOLDERS },
];

export const USAGE =
  'lvmlockctl options\n' +
  'Options:\n' +
  '--help | -h\n' +
  '      Show this help information.\n' +
  '--quit | -q\n' +
  '      Tell lvmlockd to quit.\n' +
  '--info | -i\n' +
  '      Print lock state information from lvmlockd.\n' +
  '--dump | -d\n' +
  '      Print log buffer from lvmlockd.\n' +
  '--wait | -w 0|1\n' +
  '      Wait option for other commands.\n' +
  '--force | -f 0|1>\n' +
  '      Force option for other commands.\n' +
  '--kill | -k <vgname>\n' +
  '      Kill access to the VG locks are lost (see lvmlockctl_kill_command).\n' +
  '--drop | -r <vgname>\n' +
  '      Clear locks for the VG when it is unused after kill (-k).\n' +
  '--gl-enable | -E <vgname>\n' +
  '      Tell lvmlockd to enable the global lock in a sanlock VG.\n' +
  '--gl-disable | -D <vgname>\n' +
  '      Tell lvmlockd to disable the global lock in a sanlock VG.\n' +
  '--stop-lockspaces | -S\n' +
  '      Stop all lockspaces.\n' +
  '--stderr | -e\n' +
  '      Send kill and drop messages to stderr instead of syslog\n' +
  '--set-remote-lv-lock <vgname> --lv-uuid <uuid> --lock-mode <mode>\n' +
  '      Test only (daemon_test mode): simulate a remote LV lock.\n' +
  '--json\n' +
  '      With --info (implied): print the lock state as a JSON document.\n' +
  '      With --holders: print the holders as a JSON document.\n' +
  '--metrics\n' +
  '      Print lvmlockd\'s metrics in the Prometheus text format.\n' +
  '--holders <vgname>\n' +
  '      List the locks of a VG and the hosts holding them.\n';

export interface Options {
  quit: boolean;
  info: boolean;
  dump: boolean;
  json: boolean;
  metrics: boolean;
  holders: boolean;
  waitOpt: number;
  forceOpt: number;
  killVg: boolean;
  dropVg: boolean;
  glEnable: boolean;
  glDisable: boolean;
  useStderr: boolean;
  stopLockspaces: boolean;
  setLock: boolean;
  vgName: string | undefined;
  lvUuid: string | undefined;
  lockMode: string | undefined;
}

export type ParseOutcome = { exit: number } | { options: Options };

export function readOptions(args: readonly string[], env: CliEnv): ParseOutcome {
  const o: Options = {
    quit: false, info: false, dump: false, json: false, metrics: false, holders: false, waitOpt: 1, forceOpt: 0,
    killVg: false, dropVg: false, glEnable: false, glDisable: false, useStderr: false,
    stopLockspaces: false, setLock: false, vgName: undefined, lvUuid: undefined, lockMode: undefined,
  };
  if (args.length === 0) {
    env.stdout(USAGE);
    return { exit: 0 };
  }
  const g = new Getopt(args, { shortopts: SHORT_OPTIONS, longopts: LONG_OPTIONS, progName: env.progName });
  for (let ev = g.next(); ev.kind !== 'end'; ev = g.next()) {
    if (ev.kind === 'error') {
      env.stderr(ev.message);
      env.stdout(USAGE);
      return { exit: 1 };
    }
    if (ev.kind !== 'option') continue;
    const arg = ev.arg ?? '';
    switch (ev.opt) {
      case 'h': env.stdout(USAGE); return { exit: 0 };
      case 'q': o.quit = true; break;
      case 'i': o.info = true; break;
      case 'd': o.dump = true; break;
      case 'w': o.waitOpt = cAtoi(arg); break;
      case 'k': o.killVg = true; o.vgName = arg; break;
      case 'r': o.dropVg = true; o.vgName = arg; break;
      case 'E': o.glEnable = true; o.vgName = arg; break;
      case 'D': o.glDisable = true; o.vgName = arg; break;
      case 'S': o.stopLockspaces = true; break;
      case 'e': o.useStderr = true; break;
      case OPT_SET_REMOTE_LV_LOCK: o.setLock = true; o.vgName = arg; break;
      case OPT_LV_UUID: o.lvUuid = arg; break;
      case OPT_LOCK_MODE: o.lockMode = arg; break;
      case OPT_JSON: o.json = true; o.info = true; break;
      case OPT_METRICS: o.metrics = true; break;
      case OPT_HOLDERS: o.holders = true; o.vgName = arg; break;
      default:
        // includes 'f' / --force: listed in the help text, never handled (as in C)
        env.stdout(USAGE);
        return { exit: 1 };
    }
  }
  return { options: o };
}
