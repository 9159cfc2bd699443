/* eval.c — evaluates one expression: numbers are pushed, + - * / pop two and push one. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rpn.h"

static int apply(struct rpn_stack *s, char op, const char **err)
{
	long a, b, r;

	if (!rpn_pop(s, &b) || !rpn_pop(s, &a)) {
		*err = "stack underflow";
		return -1;
	}
	switch (op) {
	case '+': r = a + b; break;
	case '-': r = a - b; break;
	case '*': r = a * b; break;
	default:
		if (b == 0) {
			*err = "division by zero";
			return -1;
		}
		r = a / b;
	}
	rpn_push(s, r);
	return 0;
}

int rpn_eval(const char *expr, long *ret, const char **err)
{
	struct rpn_stack s = {.n = 0};
	const char *p = expr;

	for (;;) {
		p += strspn(p, " \t");
		if (!*p)
			break;
		size_t len = strcspn(p, " \t");
		if (len == 1 && strchr("+-*/", *p)) {
			if (apply(&s, *p, err) < 0)
				return -1;
		} else {
			char *end;
			errno = 0;
			long x = strtol(p, &end, 10);
			if (errno || end != p + len) {
				*err = "not a number";
				return -1;
			}
			if (!rpn_push(&s, x)) {
				*err = "stack overflow";
				return -1;
			}
		}
		p += len;
	}
	if (s.n != 1) {
		*err = s.n ? "more than one value left" : "empty expression";
		return -1;
	}
	*ret = s.v[0];
	return 0;
}
