/* stack.c — the calculator's fixed-size stack. */
#include "rpn.h"

bool rpn_push(struct rpn_stack *s, long x)
{
	if (s->n == RPN_STACK_MAX)
		return false;
	s->v[s->n++] = x;
	return true;
}

bool rpn_pop(struct rpn_stack *s, long *x)
{
	if (s->n == 0)
		return false;
	*x = s->v[--s->n];
	return true;
}
