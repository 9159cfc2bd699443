/* rpn.h — a reverse Polish calculator: the stack (stack.c) and the evaluator (eval.c). */
#ifndef RPN_H
#define RPN_H

#include <stdbool.h>

#define RPN_STACK_MAX 64

struct rpn_stack {
	long v[RPN_STACK_MAX];
	int n;
};

bool rpn_push(struct rpn_stack *s, long x);
bool rpn_pop(struct rpn_stack *s, long *x);

/* Evaluates EXPR ("3 4 + 2 *"): 0 and *ret, or -1 with a message in *err. */
int rpn_eval(const char *expr, long *ret, const char **err);

#endif
