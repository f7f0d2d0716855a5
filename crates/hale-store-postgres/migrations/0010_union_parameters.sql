-- A search parameter whose expression is exactly the union of others (Observation's
-- `combo-code` is `code` | `component-code`) is now served by their index rows and has
-- none of its own (hale_fhir::Definitions::indexed_as). Its old rows are removed: nothing
-- reads them, and they were a tenth of an Observation-heavy record's index.
DELETE FROM idx_token WHERE rtype = 'Observation'
    AND param IN ('combo-code', 'combo-data-absent-reason', 'combo-value-concept');
DELETE FROM idx_quantity WHERE rtype = 'Observation' AND param = 'combo-value-quantity';
