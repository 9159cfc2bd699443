/* hello.c — compiled by examples/compile.json when the host has a C compiler. */
#include <stdio.h>

int main(void)
{
	puts("hello from a solverfs build");
	return 0;
}
