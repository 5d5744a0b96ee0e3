/*
 * Interop check: propeller's own client library (libseagate_ilm, built from
 * its source by scripts/interop-propeller.sh, never part of this repository)
 * against our ILM daemon. Two daemons stand for two hosts; ILM_RUN_DIR is read
 * by the library on every connect, so this one process talks to both.
 *
 * usage: propeller-client RUN_DIR_A RUN_DIR_B DRIVE...
 * Prints one line per check; exits with the number of failed checks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <errno.h>
#include "ilm.h"

static int failed;

static void check(const char *what, int got, int want)
{
	printf("%-58s got %4d want %4d  %s\n", what, got, want, got == want ? "ok" : "FAILED");
	if (got != want)
		failed++;
}

static int connect_to(const char *run_dir, int *sock)
{
	setenv("ILM_RUN_DIR", run_dir, 1);
	return ilm_connect(sock);
}

int main(int argc, char **argv)
{
	struct idm_lock_id id;
	struct idm_lock_op op;
	int a, b, i, count = -1, self = -1, mode = -1;
	uint8_t major = 0, minor = 0;
	char lvb[8], back[8];

	if (argc < 4) {
		fprintf(stderr, "usage: %s RUN_DIR_A RUN_DIR_B DRIVE...\n", argv[0]);
		return 100;
	}
	memset(&id, 0, sizeof(id));
	memcpy(id.vg_uuid, "interopvgvgvgvgvgvgvgvgvgvgvgvg0", 32);
	memcpy(id.lv_uuid, "interoplvlvlvlvlvlvlvlvlvlvlvlv0", 32);
	memset(&op, 0, sizeof(op));
	op.drive_num = argc - 3;
	for (i = 0; i < (int)op.drive_num; i++)
		op.drives[i] = argv[3 + i];
	op.timeout = 60000;

	check("ilm_connect host A", connect_to(argv[1], &a), 0);
	check("ilm_connect host B", connect_to(argv[2], &b), 0);
	check("ilm_set_killpath (claims 80 bytes it does not send)",
	      ilm_set_killpath(a, "/bin/true", "--kill vg"), 0);
	check("ilm_set_signal", ilm_set_signal(a, 0), 0);
	check("ilm_version", ilm_version(a, argv[3], &major, &minor), 0);
	check("  major", major, 8);

	op.mode = IDM_MODE_EXCLUSIVE;
	check("A ilm_lock ex", ilm_lock(a, &id, &op), 0);
	check("A ilm_lock ex again (same lockspace)", ilm_lock(a, &id, &op), -EBUSY);
	check("B ilm_lock ex (held by A; 5 s of retries)", ilm_lock(b, &id, &op), -1);
	check("B ilm_get_host_count", ilm_get_host_count(b, &id, &op, &count, &self), 0);
	check("  count", count, 1);
	check("  self", self, 0);
	check("B ilm_get_mode", ilm_get_mode(b, &id, &op, &mode), 0);
	check("  mode", mode, IDM_MODE_EXCLUSIVE);

	for (i = 0; i < 8; i++)
		lvb[i] = (char)(0x11 * (i + 1));
	check("A ilm_write_lvb", ilm_write_lvb(a, &id, lvb, 8), 0);
	check("A ilm_convert to sh", ilm_convert(a, &id, IDM_MODE_SHAREABLE), 0);
	op.mode = IDM_MODE_SHAREABLE;
	check("B ilm_lock sh (A shares)", ilm_lock(b, &id, &op), 0);
	check("A ilm_get_host_count", ilm_get_host_count(a, &id, &op, &count, &self), 0);
	check("  count", count, 1);
	check("  self", self, 1);
	check("B ilm_unlock", ilm_unlock(b, &id), 0);
	check("A ilm_unlock (the LVB goes to the drives)", ilm_unlock(a, &id), 0);
	check("A ilm_unlock again", ilm_unlock(a, &id), -1);

	op.mode = IDM_MODE_EXCLUSIVE;
	check("B ilm_lock ex", ilm_lock(b, &id, &op), 0);
	memset(back, 0, sizeof(back));
	check("B ilm_read_lvb", ilm_read_lvb(b, &id, back, 8), 0);
	check("  bytes 0-6 as written", memcmp(back, lvb, 7), 0);
	check("  byte 7 (reserved by the drive)", back[7], 0);
	check("B ilm_unlock", ilm_unlock(b, &id), 0);

	check("A ilm_stop_renew", ilm_stop_renew(a), 0);
	check("A ilm_start_renew", ilm_start_renew(a), 0);
	check("A ilm_inject_fault 101", ilm_inject_fault(a, 101), -EINVAL);
	check("A ilm_inject_fault 0", ilm_inject_fault(a, 0), 0);
	check("A ilm_disconnect", ilm_disconnect(a), 0);
	check("B ilm_disconnect", ilm_disconnect(b), 0);
	printf("%d check(s) failed\n", failed);
	return failed;
}
