// Sends `info`/`dump` text to lvmlockctl's abstract datagram socket.
import { sendDump } from './dump-socket';

export async function sendDumpText(text: string): Promise<number> {
  const res = await sendDump(text);
  return res.ok ? res.sent : -(res.errno ?? 1);
}
