// GET /v2/catalog: the serialised catalog for the caller's API version, built once per version.
import type { Catalog } from '../../catalog/catalog.ts';
import type { Route } from '../reply.ts';

export const getCatalog = (catalog: Catalog): Route => ({ meta }) => ({ status: 200, body: catalog.body(meta.apiMinor) });
