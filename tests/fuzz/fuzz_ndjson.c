/*
 * libFuzzer target for the NDJSON upload parser: parses each input whole and
 * in data-dependent chunks and checks that both agree and that every row
 * respects the parser's contract (see upload_fuzz.h). Corpus:
 * tests/fuzz/corpus/ndjson/ (first two bytes of each file are parameters).
 */
#define UPLOAD_FUZZ_FORMAT UPLOAD_FORMAT_NDJSON
#define UPLOAD_FUZZ_TEXT 0
#include "upload_fuzz.h"
