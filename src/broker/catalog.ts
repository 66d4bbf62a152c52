// GET /v2/catalog
import type { RequestHandler } from 'express';
import type { Catalog } from '../catalog/catalog.ts';

export function getCatalog(catalog: Catalog): RequestHandler {
  return (_req, res) => {
    res.status(200).type('application/json').send(catalog.body(res.locals.meta.apiMinor));
  };
}
