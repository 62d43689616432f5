/* fuzz_geojson.c - libFuzzer target for lib/wsi/annot's GeoJSON reader (the checks are
 * in annot_fuzz.h).  Built by `make fuzz`; replayed over
 * tests/fuzz/corpus/geojson and tests/fuzz/crashes/geojson by `make test`.
 */
#include "annot_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return annot_fuzz_one(annot_parse_geojson, data, size);
}
