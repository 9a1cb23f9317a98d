-- Bindings of external references to the one hub order each names: an ERP order number,
-- shipment, invoice or credit memo id, a Salesforce record id. The primary key makes a
-- reference name one order only; a decision that would bind it to another order fails as
-- a whole (nothing of it is written). `refs` stays the lookup index of every id.
CREATE TABLE external_refs (
    system    TEXT NOT NULL,
    kind      TEXT NOT NULL,
    reference TEXT NOT NULL,
    order_id  TEXT NOT NULL,
    PRIMARY KEY (system, kind, reference)
) STRICT, WITHOUT ROWID;

-- The references already known: ERP order numbers and Salesforce ids of the order rows, the
-- earliest booked order first where two rows share one (the later one keeps its row but
-- not the binding).
INSERT OR IGNORE INTO external_refs (system, kind, reference, order_id)
SELECT 'erp', 'order', erp_ref, order_id FROM orders
WHERE erp_ref IS NOT NULL AND erp_ref <> ''
ORDER BY coalesce(booked_at, updated_at), order_id;

INSERT OR IGNORE INTO external_refs (system, kind, reference, order_id)
SELECT 'salesforce', 'order', sf_id, order_id FROM orders
WHERE sf_id IS NOT NULL AND sf_id <> ''
ORDER BY coalesce(captured_at, updated_at), order_id;
