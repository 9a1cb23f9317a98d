//! ERP simulator.
