//! Salesforce org simulator.
