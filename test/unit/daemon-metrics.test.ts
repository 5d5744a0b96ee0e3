// Metrics text and the request log, from hand-made answered actions.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DaemonMetrics, LATENCY_BUCKETS, requestName, resultName } from '../../src/daemon/metrics';
import { DaemonLog, LOG_INFO } from '../../src/daemon/log';
import { RequestLog, holderText } from '../../src/daemon/request-log';
import { newAction, type Action } from '../../src/core/model';

function act(fields: Partial<Action>): Action {
  return Object.assign(newAction({ op: 'lock', clientId: 1, rt: 'lv', mode: 'ex', vgName: 'vg1', lvName: 'lv1', lvUuid: 'U', lmType: 'sanlock' }), fields);
}

const noSource = { lockspaces: () => [], clientsConnected: () => 3, adoptedLocks: () => 2 };

test('request counts and latency histogram: cumulative buckets, sum and count per label set', async () => {
  const m = new DaemonMetrics(noSource);
  m.answered(act({ result: 0 }), 0.0002);
  m.answered(act({ result: 0 }), 0.003);
  m.answered(act({ result: 0 }), 100);
  m.answered(act({ result: -11 }), 0.001);
  m.answered(act({ op: 'start', rt: 'vg', mode: 'un', result: 0 }), 1.5);
  const text = await m.text();
  const L = 'op="lock_lv",lock_type="sanlock",mode="ex",result="ok"';
  assert.match(text, new RegExp(`^lvmlockd_requests_total\\{${L}\\} 3$`, 'm'));
  assert.match(text, /^lvmlockd_requests_total\{op="lock_lv",lock_type="sanlock",mode="ex",result="EAGAIN"\} 1$/m);
  assert.match(text, /^lvmlockd_requests_total\{op="start_vg",lock_type="sanlock",mode="",result="ok"\} 1$/m);
  assert.match(text, new RegExp(`^lvmlockd_request_duration_seconds_bucket\\{${L},le="0.0001"\\} 0$`, 'm'));
  assert.match(text, new RegExp(`^lvmlockd_request_duration_seconds_bucket\\{${L},le="0.00025"\\} 1$`, 'm'));
  assert.match(text, new RegExp(`^lvmlockd_request_duration_seconds_bucket\\{${L},le="0.005"\\} 2$`, 'm'));
  assert.match(text, new RegExp(`^lvmlockd_request_duration_seconds_bucket\\{${L},le="${LATENCY_BUCKETS.at(-1)}"\\} 2$`, 'm'));
  assert.match(text, new RegExp(`^lvmlockd_request_duration_seconds_bucket\\{${L},le="\\+Inf"\\} 3$`, 'm'));
  assert.match(text, new RegExp(`^lvmlockd_request_duration_seconds_count\\{${L}\\} 3$`, 'm'));
  assert.match(text, new RegExp(`^lvmlockd_request_duration_seconds_sum\\{${L}\\} 100.0032$`, 'm'));
  assert.match(text, /^# TYPE lvmlockd_request_duration_seconds histogram$/m);
  assert.match(text, /^lvmlockd_clients_connected 3$/m);
  assert.match(text, /^lvmlockd_adopted_locks 2$/m);
});

test('request and result names', () => {
  assert.equal(requestName({ op: 'lock', rt: 'gl' }), 'lock_gl');
  assert.equal(requestName({ op: 'dump_info', rt: null }), 'info');
  assert.equal(requestName({ op: 'start_wait', rt: null }), 'start_wait');
  assert.equal(resultName(0), 'ok');
  assert.equal(resultName(-11), 'EAGAIN');
  assert.equal(resultName(-210), 'ENOLS');
});

function capture(): { log: DaemonLog; lines: Array<[number, string]> } {
  const lines: Array<[number, string]> = [];
  const log = new DaemonLog({ debugToStdout: false, syslogPriority: LOG_INFO, nowSeconds: () => 1000, useSyslog: true, format: 'json', syslog: (p, m) => lines.push([p, m]) });
  return { log, lines };
}

test('JSON request lines carry lockspace, resource, mode, client and result', () => {
  const { log, lines } = capture();
  new RequestLog(log, true).answered(act({ result: 0 }), { pid: 42, name: 'lvchange' }, 0.0005);
  assert.equal(lines.length, 1);
  const [prio, text] = lines[0]!;
  assert.equal(prio, LOG_INFO);
  const o = JSON.parse(text);
  assert.deepEqual(
    { op: o.op, lockspace: o.lockspace, resource: o.resource, mode: o.mode, pid: o.pid, cmd: o.cmd, result: o.result, level: o.level, time: o.time },
    { op: 'lock_lv', lockspace: 'lvm_vg1', resource: 'lv1', mode: 'ex', pid: 42, cmd: 'lvchange', result: 'ok', level: 'info', time: 1000 });
});

test('a refused LV lock names its holder at warning level, also in text format', () => {
  const lines: Array<[number, string]> = [];
  const log = new DaemonLog({ debugToStdout: false, syslogPriority: 4, nowSeconds: () => 1, useSyslog: true, syslog: (p, m) => lines.push([p, m]) });
  const refused = act({ result: -11, owner: { hostId: 2, generation: 7, timestamp: 0, state: 'LIVE', name: 'host-b' } });
  new RequestLog(log, false).answered(refused, { pid: 42, name: 'lvchange' }, 0.01);
  assert.deepEqual(lines, [[4, 'LV vg1/lv1 ex for lvchange[42] refused: held by host_id 2 (host-b) generation 7, host state LIVE']]);
  assert.equal(holderText(act({ owner: null })), null);
  // A granted lock and a refused VG lock say nothing at warning level.
  new RequestLog(log, false).answered(act({ result: 0 }), { pid: 1, name: 'x' }, 0);
  new RequestLog(log, false).answered(act({ rt: 'vg', result: -11 }), { pid: 1, name: 'x' }, 0);
  assert.equal(lines.length, 1);
});
