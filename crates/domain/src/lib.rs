//! Canonical order-lifecycle model: ids, money, entities, and the pure lifecycle logic.
