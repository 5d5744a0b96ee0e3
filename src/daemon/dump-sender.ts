// Placeholder wiring for the dump datagram; replaced by dump-socket.ts.
export async function sendDumpText(_text: string): Promise<number> {
  return -1;
}
