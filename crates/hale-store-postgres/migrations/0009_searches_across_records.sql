-- Searches across records are for finding a person (a Patient, by an identifier such as the
-- NHS number) and the grants a holder has been given (a Consent, by its actor's
-- identifier); everything else is searched one record at a time. So the cross-record token
-- index keeps only those two types' rows, and the cross-record reference index goes.
-- Over every record's every code and reference, those two indexes were about half of what
-- a bundle import wrote: their keys do not lead with the record, so each import touched
-- pages all over them.
DROP INDEX idx_token_global;
DROP INDEX idx_ref_global;
-- Every search that follows a reference backwards (_revinclude, _has, a chain) names the
-- referring type and parameter, so the table's own key (record, type, parameter, target)
-- serves it; an index by (record, target type, target) served nothing the key does not.
DROP INDEX idx_ref_target;
-- Queries name these types as literals: a partial index is matched against a literal.
CREATE INDEX idx_token_across_records ON idx_token (rtype, param, code, system)
    WHERE rtype = 'Patient' OR rtype = 'Consent';
