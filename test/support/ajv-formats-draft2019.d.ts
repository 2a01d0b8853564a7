// The package ships no types: its one export, as its README documents it.
declare module 'ajv-formats-draft2019' {
  import type { Ajv } from 'ajv';
  /** Adds draft 2019-09's formats (all, or those named) to `ajv`. */
  export default function addFormats(
    ajv: Ajv,
    options?: { readonly formats?: readonly string[] },
  ): Ajv;
}
