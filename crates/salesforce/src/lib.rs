//! Salesforce connector.
