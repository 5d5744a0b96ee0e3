// The kill command of `lvmlockctl --kill`: reading lvmlockctl_kill_command
// from lvm's config and running it, with C lvmlockctl's own argv splitting.

import { spawnSync } from 'node:child_process';
import { errnoOf } from './client';
import type { CliEnv } from './env';

const PATH_MAX = 4096;

/** lvmlockctl's own argv splitting of a command string (no shell): words of
 *  alnum/punct characters separated by white space, `\\` and `\<space>` escapes;
 *  any other byte (or a bad escape) ends the parse. Null when there are more
 *  than 32 words (C then runs nothing). */
export function parseKillCommandLine(cmd: string): string[] | null {
  const av: string[] = [];
  let arg = '';
  const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';
  const isGraph = (c: string) => { const n = c.charCodeAt(0); return n > 0x20 && n < 0x7f; };
  for (let i = 0; i < cmd.length; i++) {
    if (av.length === 32) return null;
    let c = cmd[i]!;
    if (c === '\0') break;
    if (c === '\\') {
      if (i === cmd.length - 1) break;
      i++;
      c = cmd[i]!;
      if (c === '\\' || isSpace(c)) { arg += c; continue; }
      break;
    }
    if (isGraph(c)) {
      arg += c;
    } else if (isSpace(c)) {
      if (arg) av.push(arg);
      arg = '';
    } else {
      break;
    }
  }
  if (arg) {
    if (av.length >= 32) return null;
    av.push(arg);
  }
  return av;
}

export interface CommandRun { started: boolean; output: string; status: 'ok' | 'exit' | 'signal'; code: number }

/** _run_command_pipe + _close_command_pipe: stdin /dev/null, stdout captured, stderr inherited. */
export function runCommandPipe(cmd: string, env: CliEnv): CommandRun {
  const av = parseKillCommandLine(cmd);
  if (av === null) return { started: false, output: '', status: 'exit', code: 0 };
  let output = '';
  let status: CommandRun['status'] = 'ok';
  let code = 0;
  if (av.length === 0) {
    // execvp(NULL) in the child fails with EFAULT; the child reports it on the pipe.
    output = 'execvp error 14\n';
    status = 'exit';
    code = 14;
  } else {
    const r = spawnSync(av[0]!, av.slice(1), { stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * 1024 * 1024 });
    if (r.error) {
      const e = errnoOf(r.error);
      output = `execvp error ${e}\n`;
      status = 'exit';
      code = e;
    } else {
      output = (r.stdout ?? Buffer.alloc(0)).toString('latin1');
      if (r.signal) { status = 'signal'; code = 0; }
      else if (r.status) { status = 'exit'; code = r.status; }
    }
  }
  if (status === 'exit') env.stdout(`child exit error ${code}\n`);
  else if (status === 'signal') env.stdout('child exit from signal\n');
  return { started: true, output, status, code };
}

export function getKillCommand(env: CliEnv, vgName: string): string | null {
  const configCmd = `${env.lvmPath} config --typeconfig full global/lvmlockctl_kill_command`.slice(0, PATH_MAX - 1);
  // In C the "child exit ..." note of the config command is printed after the
  // verdict on its output; collect it and print it at the end.
  const held: string[] = [];
  const sub: CliEnv = { ...env, stdout: (s) => held.push(s) };
  const run = runCommandPipe(configCmd, sub);
  const flush = () => { for (const s of held) env.stdout(s); };
  if (!run.started) {
    env.stdout(`failed to run ${configCmd}\n`);
    return null;
  }
  const nl = run.output.indexOf('\n');
  const line = (nl >= 0 ? run.output.slice(0, nl + 1) : run.output).slice(0, PATH_MAX - 1);
  if (line.length === 0) {
    env.stdout(`no output from ${configCmd}\n`);
    flush();
    return null;
  }
  const m = /^lvmlockctl_kill_command="([^\n"]{1,256})/.exec(line);
  if (!m) {
    env.stdout(`unrecognized config value from ${configCmd}\n`);
    flush();
    return null;
  }
  const val = m[1]!;
  if (val[0] === ' ') {
    env.stdout(`invalid config value from ${configCmd}\n`);
    flush();
    return null;
  }
  if (val[0] !== '/') {
    env.stdout('lvmlockctl_kill_command must be full path\n');
    flush();
    return null;
  }
  env.stdout(`Found lvmlockctl_kill_command: ${val}\n`);
  flush();
  return `${val} ${vgName}`.slice(0, PATH_MAX - 1);
}
