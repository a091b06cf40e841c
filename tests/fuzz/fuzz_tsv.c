/*
 * libFuzzer target for the TSV upload parser: parses each input whole and
 * in data-dependent chunks and checks that both agree and that every row
 * respects the parser's contract (see upload_fuzz.h). Corpus:
 * tests/fuzz/corpus/tsv/ (first two bytes of each file are parameters).
 */
#define UPLOAD_FUZZ_FORMAT UPLOAD_FORMAT_TSV
#define UPLOAD_FUZZ_TEXT 1
#include "upload_fuzz.h"
