/* main.c — rpn EXPR...: prints the value of each expression, one a line. */
#include <stdio.h>

#include "rpn.h"

int main(int argc, char **argv)
{
	int status = 0;

	for (int i = 1; i < argc; i++) {
		const char *err;
		long v;

		if (rpn_eval(argv[i], &v, &err) == 0) {
			printf("%ld\n", v);
		} else {
			fprintf(stderr, "rpn: %s: %s\n", argv[i], err);
			status = 1;
		}
	}
	return status;
}
