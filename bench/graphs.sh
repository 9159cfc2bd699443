# shellcheck shell=bash
# bench/graphs.sh — the synthetic graphs of the solver benchmarks (solve-scale.sh, gc.sh,
# profile.sh):
# each gen_SHAPE N [...] prints a spec of about N vertices on stdout (the shapes are
# described in solve-scale.sh).  LATTICE_W (default 100) is the lattice's width.
: "${LATTICE_W:=100}"

gen_chain() {
	awk -v n="$1" 'BEGIN {
		printf "{\"vertices\":{"
		for (i = 0; i < n; i++) {
			base = i ? sprintf("\"base\":\"v%d\",", i - 1) : ""
			printf "%s\"v%d\":{\"op\":\"file\",%s\"actions\":[{\"mkfile\":{\"path\":\"f\",\"data\":\"%d\\n\"}}]}", i ? "," : "", i, base, i
		}
		printf "},\"outputs\":[\"v%d\"]}\n", n - 1
	}'
}

# gen_wide N [SEED]: a SEED (default none) goes into every root's data, so specs of
# other seeds share no result.
gen_wide() {
	awk -v n="$1" -v seed="${2:-}" 'BEGIN {
		printf "{\"vertices\":{"
		sfx = seed == "" ? "" : " " seed
		for (i = 0; i < n; i++)
			printf "%s\"r%d\":{\"op\":\"file\",\"actions\":[{\"mkfile\":{\"path\":\"f%d\",\"data\":\"%d%s\\n\"}}]}", i ? "," : "", i, i, i, sfx
		printf ",\"all\":{\"op\":\"merge\",\"inputs\":["
		for (i = 0; i < n; i++)
			printf "%s\"r%d\"", i ? "," : "", i
		printf "]}},\"outputs\":[\"all\"]}\n"
	}'
}

# gen_lattice N [SEED]: W columns, N / W layers; SEED (default 0) is written into the
# data of root (0, 0), so another seed is the incremental phase's one changed root.
gen_lattice() {
	awk -v n="$1" -v w="$LATTICE_W" -v seed="${2:-0}" 'BEGIN {
		layers = int(n / w); if (layers < 1) layers = 1
		printf "{\"vertices\":{"
		for (j = 0; j < w; j++)
			printf "%s\"v0_%d\":{\"op\":\"file\",\"actions\":[{\"mkfile\":{\"path\":\"f%d\",\"data\":\"%d %s\\n\"}}]}", j ? "," : "", j, j, j, j ? 0 : seed
		for (l = 1; l < layers; l++)
			for (j = 0; j < w; j++)
				printf ",\"v%d_%d\":{\"op\":\"merge\",\"inputs\":[\"v%d_%d\",\"v%d_%d\"]}", l, j, l - 1, j, l - 1, (j + 1) % w
		printf ",\"top\":{\"op\":\"merge\",\"inputs\":["
		for (j = 0; j < w; j++)
			printf "%s\"v%d_%d\"", j ? "," : "", layers - 1, j
		printf "]}},\"outputs\":[\"top\"]}\n"
	}'
}

gen_fanin() {
	awk -v n="$1" 'BEGIN {
		leaves = int(n / 2)
		printf "{\"vertices\":{"
		for (i = 0; i < leaves; i++) {
			printf "%s\"l%d\":{\"op\":\"file\",\"actions\":[{\"mkfile\":{\"path\":\"f%d\",\"data\":\"%d\\n\"}}]}", i ? "," : "", i, i, i
			q[i] = "l" i
		}
		m = 0; cnt = leaves
		while (cnt > 1) {
			k = 0
			for (i = 0; i + 1 < cnt; i += 2) {
				printf ",\"m%d\":{\"op\":\"merge\",\"inputs\":[\"%s\",\"%s\"]}", m, q[i], q[i + 1]
				nq[k++] = "m" m++
			}
			if (cnt % 2) nq[k++] = q[cnt - 1]
			for (i = 0; i < k; i++) q[i] = nq[i]
			cnt = k
		}
		printf "},\"outputs\":[\"%s\"]}\n", q[0]
	}'
}
