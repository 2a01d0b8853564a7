// CycloneDX 1.5 validation as the CycloneDX project's own tools do it: ajv with
// the JSON schemas that the project ships in its npm library
// (@cyclonedx/cyclonedx-library/res/schema), the SPDX license list and the
// signature schema registered under the names the BOM schema refers to them by.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import addFormats from 'ajv-formats';
import addDraft2019Formats from 'ajv-formats-draft2019';

const require = createRequire(import.meta.url);
const SCHEMAS = join(
  dirname(require.resolve('@cyclonedx/cyclonedx-library/package.json')),
  'res',
  'schema',
);

const readSchema = async (file: string): Promise<Record<string, unknown>> =>
  JSON.parse(await readFile(join(SCHEMAS, file), 'utf8')) as Record<string, unknown>;

/** A validator of CycloneDX 1.5 JSON: resolves with the schema's errors, empty when valid. */
export async function cyclonedx15Validator(): Promise<(bom: unknown) => ErrorObject[]> {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats.default(ajv);
  addDraft2019Formats(ajv, { formats: ['idn-email', 'iri-reference'] });
  for (const ref of ['spdx.SNAPSHOT.schema.json', 'jsf-0.82.SNAPSHOT.schema.json'])
    ajv.addSchema(await readSchema(ref), `http://cyclonedx.org/schema/${ref}`);
  const validate = ajv.compile(await readSchema('bom-1.5.SNAPSHOT.schema.json'));
  return (bom) => (validate(bom) ? [] : [...(validate.errors ?? [])]);
}
