export async function runScale(_o: { hosts: number; lvs: number; seed: number; json: boolean }): Promise<void> {
  throw new Error('scale mode: not yet');
}
