#!/bin/sh
# Prints a greeting for every word of words.txt (run by the "shout" vertex of spec.json).
while read -r w; do
	printf 'hello, %s\n' "$w"
done <"$(dirname "$0")/words.txt"
