// A small builder for the OpenAPI v3 schemas of our CRDs. The schemas written
// with it are the single source of truth: `npm run generate` turns them into
// the CRD YAML and, through the TypeScript hints kept beside them (never in
// the YAML), into the types the code uses.

export interface ValidationRule {
  readonly rule: string;
  readonly message: string;
  readonly fieldPath?: string;
  readonly reason?:
    'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

/** The subset of JSONSchemaProps our CRDs use, typed precisely. */
export interface Schema {
  readonly type?: 'object' | 'array' | 'string' | 'integer' | 'boolean';
  readonly description?: string;
  readonly properties?: Readonly<Record<string, Schema>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: Schema;
  readonly items?: Schema;
  readonly enum?: readonly string[];
  readonly pattern?: string;
  readonly format?: 'date-time';
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly default?: unknown;
  readonly anyOf?: readonly Schema[];
  readonly 'x-kubernetes-int-or-string'?: true;
  readonly 'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  readonly 'x-kubernetes-list-map-keys'?: readonly string[];
  readonly 'x-kubernetes-map-type'?: 'atomic' | 'granular';
  readonly 'x-kubernetes-validations'?: readonly ValidationRule[];
}

/** How a schema node appears in generated TypeScript. Kept out of the YAML. */
export interface TypeHint {
  /** Emit this object or enum as a named, exported type. */
  readonly typeName?: string;
  /** Use this TypeScript type verbatim (a brand or a template literal). */
  readonly tsType?: string;
}

const hints = new WeakMap<Schema, TypeHint>();

export function typeHint(schema: Schema): TypeHint | undefined {
  return hints.get(schema);
}

function withHint<S extends Schema>(schema: S, hint: TypeHint | undefined): S {
  if (hint) hints.set(schema, hint);
  return schema;
}

type Common = Pick<Schema, 'default' | 'x-kubernetes-validations'> & { readonly tsType?: string };

function split<T extends Common>(opts: T): [Omit<T, 'tsType'>, TypeHint | undefined] {
  const { tsType, ...rest } = opts;
  return [rest, tsType === undefined ? undefined : { tsType }];
}

export function string(
  description: string,
  opts: Common & Pick<Schema, 'pattern' | 'minLength' | 'maxLength' | 'format'> = {},
): Schema {
  const [rest, hint] = split(opts);
  return withHint({ type: 'string', description, ...rest }, hint);
}

export function enumeration(
  description: string,
  values: readonly string[],
  opts: Common & { readonly name?: string } = {},
): Schema {
  const { name, ...common } = opts;
  const [rest, hint] = split(common);
  return withHint(
    { type: 'string', description, enum: values, ...rest },
    name ? { typeName: name } : hint,
  );
}

export function integer(
  description: string,
  opts: Common & Pick<Schema, 'minimum' | 'maximum'> = {},
): Schema {
  const [rest, hint] = split(opts);
  return withHint({ type: 'integer', description, ...rest }, hint);
}

export function boolean(description: string, opts: Common = {}): Schema {
  const [rest, hint] = split(opts);
  return withHint({ type: 'boolean', description, ...rest }, hint);
}

export function intOrString(description: string, opts: Common = {}): Schema {
  const [rest, hint] = split(opts);
  return withHint(
    {
      description,
      'x-kubernetes-int-or-string': true,
      anyOf: [{ type: 'integer' }, { type: 'string' }],
      ...rest,
    },
    hint,
  );
}

export function array(
  description: string,
  items: Schema,
  opts: Common &
    Pick<
      Schema,
      'minItems' | 'maxItems' | 'x-kubernetes-list-type' | 'x-kubernetes-list-map-keys'
    > = {},
): Schema {
  const [rest, hint] = split(opts);
  return withHint({ type: 'array', description, items, ...rest }, hint);
}

export function stringMap(description: string, values: Schema): Schema {
  return { type: 'object', description, additionalProperties: values };
}

export interface ObjectOptions extends Common {
  readonly required?: readonly string[];
  /** Export the object as this named interface in the generated types. */
  readonly name?: string;
  readonly mapType?: 'atomic' | 'granular';
}

export function object(
  description: string,
  properties: Readonly<Record<string, Schema>>,
  opts: ObjectOptions = {},
): Schema {
  const { required, name, mapType, tsType, ...rest } = opts;
  const schema: Schema = {
    type: 'object',
    description,
    properties,
    ...(required && required.length > 0 ? { required } : {}),
    ...(mapType ? { 'x-kubernetes-map-type': mapType } : {}),
    ...rest,
  };
  return withHint(schema, name ? { typeName: name } : tsType ? { tsType } : undefined);
}

/** A CEL rule; `message` must name what is wrong and how to fix it. */
export function cel(rule: string, message: string, fieldPath?: string): ValidationRule {
  return { rule, message, ...(fieldPath ? { fieldPath } : {}) };
}
