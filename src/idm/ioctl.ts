// libc's ioctl with a byte-buffer argument, bound through koffi on first use
// (loading koffi only when a real device is driven): the one binding the
// SG_IO and NVMe passthrough transports share.

/* eslint-disable @typescript-eslint/no-explicit-any */
export interface IoctlBinding { koffi: any; ioctl: any }

let native: IoctlBinding | null = null;

export function ioctlBinding(): IoctlBinding {
  if (native) return native;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const koffi = require('koffi');
  const c = koffi.load('libc.so.6');
  native = { koffi, ioctl: c.func('int ioctl(int fd, unsigned long request, _Inout_ uint8_t *arg)') };
  return native;
}
