//! Org metadata: every simulated object and field is declared here, once. Describe output,
//! input validation, SOQL and change-event schemas are all derived from these declarations.

use std::collections::HashMap;

use serde_json::{Value as Json, json};

/// Salesforce field types (describe `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Record id.
    Id,
    /// Short text.
    String,
    /// Long text.
    TextArea,
    /// Picklist.
    Picklist,
    /// Lookup to another record.
    Reference,
    /// Checkbox.
    Boolean,
    /// Money.
    Currency,
    /// Floating-point number.
    Double,
    /// Percentage.
    Percent,
    /// Integer.
    Int,
    /// Calendar date.
    Date,
    /// Instant.
    DateTime,
    /// E-mail address.
    Email,
    /// Phone number.
    Phone,
    /// URL.
    Url,
}

impl FieldType {
    /// Describe `type` name.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Id => "id",
            FieldType::String => "string",
            FieldType::TextArea => "textarea",
            FieldType::Picklist => "picklist",
            FieldType::Reference => "reference",
            FieldType::Boolean => "boolean",
            FieldType::Currency => "currency",
            FieldType::Double => "double",
            FieldType::Percent => "percent",
            FieldType::Int => "int",
            FieldType::Date => "date",
            FieldType::DateTime => "datetime",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
        }
    }

    /// Describe `soapType`.
    pub fn soap_type(self) -> &'static str {
        match self {
            FieldType::Id | FieldType::Reference => "tns:ID",
            FieldType::Boolean => "xsd:boolean",
            FieldType::Currency | FieldType::Double | FieldType::Percent => "xsd:double",
            FieldType::Int => "xsd:int",
            FieldType::Date => "xsd:date",
            FieldType::DateTime => "xsd:dateTime",
            _ => "xsd:string",
        }
    }

    /// Whether values are text.
    pub fn is_text(self) -> bool {
        matches!(
            self,
            FieldType::Id
                | FieldType::String
                | FieldType::TextArea
                | FieldType::Picklist
                | FieldType::Reference
                | FieldType::Email
                | FieldType::Phone
                | FieldType::Url
        )
    }

    /// Whether values are numbers.
    pub fn is_number(self) -> bool {
        matches!(
            self,
            FieldType::Currency | FieldType::Double | FieldType::Percent | FieldType::Int
        )
    }
}

/// One field of an object.
#[derive(Debug, Clone)]
pub struct FieldDef {
    /// API name, canonical casing.
    pub name: String,
    /// Label.
    pub label: String,
    /// Type.
    pub ty: FieldType,
    /// Maximum text length (0 = not text).
    pub length: usize,
    /// Settable on create.
    pub createable: bool,
    /// Settable on update.
    pub updateable: bool,
    /// Must be present on create (and never nulled).
    pub required: bool,
    /// Gets a value on create when none is given.
    pub defaulted: bool,
    /// Value unique among live records.
    pub unique: bool,
    /// External id (usable for upsert and lookups).
    pub external_id: bool,
    /// Target objects of a reference.
    pub reference_to: Vec<String>,
    /// Relationship name of a reference (`Account` for `AccountId`, `Foo__r` for `Foo__c`).
    pub relationship_name: Option<String>,
    /// Picklist values.
    pub picklist: Vec<String>,
    /// Picklist refuses values outside `picklist`.
    pub restricted: bool,
    /// Default picklist value.
    pub default_value: Option<String>,
    /// Auto-number or formula computed by the org.
    pub calculated: bool,
    /// Custom field (`__c`).
    pub custom: bool,
    /// Part of the change-event schema.
    pub in_cdc: bool,
}

impl FieldDef {
    fn new(name: &str, ty: FieldType) -> FieldDef {
        let length = match ty {
            FieldType::Id | FieldType::Reference => 18,
            FieldType::String | FieldType::Email | FieldType::Phone | FieldType::Url => 255,
            FieldType::Picklist => 255,
            FieldType::TextArea => 32_000,
            _ => 0,
        };
        let custom = name.ends_with("__c");
        let relationship_name = (ty == FieldType::Reference).then(|| {
            if let Some(base) = name.strip_suffix("__c") {
                format!("{base}__r")
            } else {
                name.strip_suffix("Id").unwrap_or(name).to_string()
            }
        });
        FieldDef {
            name: name.to_string(),
            label: label_of(name),
            ty,
            length,
            createable: true,
            updateable: true,
            required: false,
            defaulted: ty == FieldType::Boolean,
            unique: false,
            external_id: false,
            reference_to: Vec::new(),
            relationship_name,
            picklist: Vec::new(),
            restricted: false,
            default_value: None,
            calculated: false,
            custom,
            in_cdc: true,
        }
    }

    /// Whether the field may be null in describe terms.
    pub fn nillable(&self) -> bool {
        !(self.required || self.ty == FieldType::Boolean || self.ty == FieldType::Id)
    }

    /// Describe JSON of the field.
    pub fn describe(&self) -> Json {
        let (precision, scale) = match self.ty {
            FieldType::Currency => (18, 2),
            FieldType::Double | FieldType::Percent => (18, 2),
            FieldType::Int => (9, 0),
            _ => (0, 0),
        };
        json!({
            "name": self.name,
            "label": self.label,
            "type": self.ty.name(),
            "soapType": self.ty.soap_type(),
            "length": self.length,
            "byteLength": self.length * 3,
            "precision": precision,
            "scale": scale,
            "digits": 0,
            "nillable": self.nillable(),
            "createable": self.createable,
            "updateable": self.updateable,
            "defaultedOnCreate": self.defaulted,
            "calculated": self.calculated,
            "autoNumber": self.calculated && self.ty == FieldType::String,
            "unique": self.unique,
            "externalId": self.external_id,
            "idLookup": self.ty == FieldType::Id || self.external_id,
            "caseSensitive": false,
            "custom": self.custom,
            "filterable": self.ty != FieldType::TextArea,
            "sortable": self.ty != FieldType::TextArea,
            "groupable": self.ty.is_text() && self.ty != FieldType::TextArea,
            "nameField": self.name == "Name",
            "referenceTo": self.reference_to,
            "relationshipName": self.relationship_name,
            "restrictedPicklist": self.restricted,
            // Checkboxes default to false; other fields name their default, if any.
            "defaultValue": if self.ty == FieldType::Boolean { json!(false) } else { json!(self.default_value) },
            "picklistValues": self.picklist.iter().map(|v| json!({
                "value": v, "label": v, "active": true,
                "defaultValue": self.default_value.as_deref() == Some(v.as_str()),
                "validFor": null,
            })).collect::<Vec<_>>(),
        })
    }
}

fn label_of(name: &str) -> String {
    let base = name.trim_end_matches("__c").trim_end_matches("__e");
    let base = base
        .strip_suffix("Id")
        .filter(|b| !b.is_empty())
        .map_or(base, |b| b);
    let mut out = String::new();
    let mut prev_lower = false;
    for c in base.chars() {
        if c == '_' {
            out.push(' ');
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower {
            out.push(' ');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c);
    }
    out
}

/// Builder shorthand used by the declarations below.
struct F(FieldDef);

impl F {
    fn req(mut self) -> F {
        self.0.required = true;
        self
    }
    fn ro(mut self) -> F {
        self.0.createable = false;
        self.0.updateable = false;
        self
    }
    fn create_only(mut self) -> F {
        self.0.updateable = false;
        self
    }
    fn len(mut self, n: usize) -> F {
        self.0.length = n;
        self
    }
    fn ext(mut self) -> F {
        self.0.external_id = true;
        self.0.unique = true;
        self
    }
    fn ext_not_unique(mut self) -> F {
        self.0.external_id = true;
        self
    }
    fn to(mut self, target: &str) -> F {
        self.0.reference_to = vec![target.to_string()];
        self
    }
    fn pick(mut self, values: &[&str]) -> F {
        self.0.picklist = values.iter().map(|v| (*v).to_string()).collect();
        self
    }
    fn restricted(mut self) -> F {
        self.0.restricted = true;
        self
    }
    fn default(mut self, v: &str) -> F {
        self.0.default_value = Some(v.to_string());
        self.0.defaulted = true;
        self
    }
    fn calc(mut self) -> F {
        self.0.calculated = true;
        self.0.createable = false;
        self.0.updateable = false;
        self.0.defaulted = true;
        self
    }
    fn no_cdc(mut self) -> F {
        self.0.in_cdc = false;
        self
    }
}

fn f(name: &str, ty: FieldType) -> F {
    F(FieldDef::new(name, ty))
}

use FieldType as T;

/// How an object behaves beyond its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An ordinary sObject.
    SObject,
    /// A platform event (published over Pub/Sub, not stored).
    PlatformEvent,
}

/// One object of the org.
#[derive(Debug, Clone)]
pub struct ObjectDef {
    /// API name.
    pub name: String,
    /// Label.
    pub label: String,
    /// Plural label.
    pub label_plural: String,
    /// Three-character id prefix.
    pub key_prefix: String,
    /// Custom object (`__c`).
    pub custom: bool,
    /// Records can be created over the API.
    pub createable: bool,
    /// Records can be updated over the API.
    pub updateable: bool,
    /// Records can be deleted over the API.
    pub deletable: bool,
    /// Object kind.
    pub kind: Kind,
    /// Fields in declaration order (the change-event schema keeps this order).
    pub fields: Vec<FieldDef>,
    index: HashMap<String, usize>,
    relationships: HashMap<String, usize>,
}

impl ObjectDef {
    fn new(name: &str, prefix: &str, owned: bool, fields: Vec<F>) -> ObjectDef {
        let mut all = vec![f("Id", T::Id).ro().no_cdc()];
        if owned {
            all.push(f("OwnerId", T::Reference).to("User").default(""));
        }
        all.push(f("IsDeleted", T::Boolean).ro().no_cdc());
        all.extend(fields);
        all.push(f("CreatedDate", T::DateTime).ro());
        all.push(f("CreatedById", T::Reference).to("User").ro());
        all.push(f("LastModifiedDate", T::DateTime).ro());
        all.push(f("LastModifiedById", T::Reference).to("User").ro());
        all.push(f("SystemModstamp", T::DateTime).ro().no_cdc());
        let mut def = ObjectDef {
            name: name.to_string(),
            label: label_of(name),
            label_plural: format!("{}s", label_of(name)),
            key_prefix: prefix.to_string(),
            custom: name.ends_with("__c"),
            createable: true,
            updateable: true,
            deletable: true,
            kind: Kind::SObject,
            fields: all.into_iter().map(|F(d)| d).collect(),
            index: HashMap::new(),
            relationships: HashMap::new(),
        };
        for fd in &mut def.fields {
            if fd.name == "OwnerId" {
                fd.default_value = None;
            }
        }
        def.reindex();
        def
    }

    fn read_only(mut self) -> ObjectDef {
        self.createable = false;
        self.updateable = false;
        self.deletable = false;
        self
    }

    fn reindex(&mut self) {
        self.index = self
            .fields
            .iter()
            .enumerate()
            .map(|(i, fd)| (fd.name.to_ascii_lowercase(), i))
            .collect();
        self.relationships = self
            .fields
            .iter()
            .enumerate()
            .filter_map(|(i, fd)| {
                fd.relationship_name
                    .as_ref()
                    .map(|r| (r.to_ascii_lowercase(), i))
            })
            .collect();
    }

    /// Index of a field by case-insensitive name.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.index.get(&name.to_ascii_lowercase()).copied()
    }

    /// A field by case-insensitive name.
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.field_index(name).map(|i| &self.fields[i])
    }

    /// The reference field behind a relationship name (`Account` → `AccountId`).
    pub fn relationship(&self, name: &str) -> Option<usize> {
        self.relationships.get(&name.to_ascii_lowercase()).copied()
    }

    /// Adds a custom field at run time. Returns its index.
    pub fn add_field(&mut self, field: FieldDef) -> usize {
        self.fields.push(field);
        self.reindex();
        self.fields.len() - 1
    }

    /// The change-event channel entity name (`Order` → `OrderChangeEvent`, `Foo__c` → `Foo__ChangeEvent`).
    pub fn change_event_name(&self) -> String {
        match self.name.strip_suffix("__c") {
            Some(base) => format!("{base}__ChangeEvent"),
            None => format!("{}ChangeEvent", self.name),
        }
    }

    fn urls(&self, version: &str) -> Json {
        let base = format!("/services/data/v{version}/sobjects/{}", self.name);
        json!({
            "sobject": base,
            "describe": format!("{base}/describe"),
            "rowTemplate": format!("{base}/{{ID}}"),
        })
    }

    /// The short describe used in the sObject list.
    pub fn describe_global(&self, version: &str) -> Json {
        let is_sobject = self.kind == Kind::SObject;
        json!({
            "name": self.name,
            "label": self.label,
            "labelPlural": self.label_plural,
            "keyPrefix": self.key_prefix,
            "custom": self.custom,
            "customSetting": false,
            "createable": self.createable,
            "updateable": self.updateable && is_sobject,
            "deletable": self.deletable && is_sobject,
            "queryable": is_sobject,
            "retrieveable": is_sobject,
            "searchable": is_sobject,
            "triggerable": true,
            "layoutable": is_sobject,
            "replicateable": is_sobject,
            "undeletable": self.deletable && is_sobject,
            "mergeable": false,
            "activateable": false,
            "feedEnabled": false,
            "urls": self.urls(version),
        })
    }

    /// The full describe.
    pub fn describe(&self, version: &str, children: Vec<Json>) -> Json {
        let mut d = self.describe_global(version);
        if let Some(obj) = d.as_object_mut() {
            obj.insert(
                "fields".into(),
                Json::Array(self.fields.iter().map(FieldDef::describe).collect()),
            );
            obj.insert("childRelationships".into(), Json::Array(children));
            obj.insert(
                "recordTypeInfos".into(),
                json!([{
                    "active": true, "available": true, "defaultRecordTypeMapping": true,
                    "developerName": "Master", "master": true, "name": "Master",
                    "recordTypeId": "012000000000000AAA",
                }]),
            );
        }
        d
    }
}

/// All objects of the org.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// Objects, in a stable order.
    pub objects: Vec<ObjectDef>,
    index: HashMap<String, usize>,
    prefixes: HashMap<String, usize>,
}

impl Metadata {
    /// Index of an object by case-insensitive name.
    pub fn object_index(&self, name: &str) -> Option<usize> {
        self.index.get(&name.to_ascii_lowercase()).copied()
    }

    /// An object by case-insensitive name.
    pub fn object(&self, name: &str) -> Option<&ObjectDef> {
        self.object_index(name).map(|i| &self.objects[i])
    }

    /// The object whose ids start with `prefix`.
    pub fn object_by_prefix(&self, prefix: &str) -> Option<usize> {
        self.prefixes.get(prefix).copied()
    }

    /// Child relationships pointing at `object` (for describe).
    pub fn children_of(&self, object: &str) -> Vec<Json> {
        let mut out = Vec::new();
        for child in &self.objects {
            for fd in &child.fields {
                if fd.reference_to.iter().any(|t| t == object) && !fd.name.ends_with("ById") {
                    let rel = if fd.custom {
                        Some(format!("{}s__r", child.name.trim_end_matches("__c")))
                    } else {
                        match (child.name.as_str(), fd.name.as_str()) {
                            ("OrderItem", "OrderId") => Some("OrderItems".to_string()),
                            ("Contact", "AccountId") => Some("Contacts".to_string()),
                            ("Order", "AccountId") => Some("Orders".to_string()),
                            ("Case", "AccountId") => Some("Cases".to_string()),
                            _ => None,
                        }
                    };
                    out.push(json!({
                        "childSObject": child.name, "field": fd.name,
                        "relationshipName": rel, "cascadeDelete": child.name == "OrderItem",
                    }));
                }
            }
        }
        out
    }

    /// Rebuilds the lookup tables after objects change.
    pub fn reindex(&mut self) {
        self.index = self
            .objects
            .iter()
            .enumerate()
            .map(|(i, o)| (o.name.to_ascii_lowercase(), i))
            .collect();
        self.prefixes = self
            .objects
            .iter()
            .enumerate()
            .map(|(i, o)| (o.key_prefix.clone(), i))
            .collect();
    }
}

fn address(prefix: &str) -> Vec<F> {
    ["Street", "City", "State", "PostalCode", "Country"]
        .iter()
        .map(|part| {
            let ty = if *part == "Street" {
                T::TextArea
            } else {
                T::String
            };
            let len = if *part == "Street" { 255 } else { 80 };
            f(&format!("{prefix}{part}"), ty).len(len)
        })
        .collect()
}

fn hub_key() -> F {
    f("Hub_Key__c", T::String).len(255).ext()
}

/// The org's objects: standard order-lifecycle objects plus the hub's custom fields.
pub fn standard() -> Metadata {
    let mut objects = Vec::new();

    let mut account = vec![
        f("Name", T::String).req(),
        f("AccountNumber", T::String).len(40),
        f("Type", T::Picklist).pick(&[
            "Prospect",
            "Customer - Direct",
            "Customer - Channel",
            "Other",
        ]),
        f("Industry", T::Picklist).pick(&["Retail", "Apparel", "Consumer Goods", "Other"]),
        f("Phone", T::Phone).len(40),
        f("Website", T::Url),
        f("ParentId", T::Reference).to("Account"),
    ];
    account.extend(address("Billing"));
    account.extend(address("Shipping"));
    account.extend([
        f("Description", T::TextArea),
        f("ERP_Customer_Number__c", T::String).ext(),
        f("Credit_Status__c", T::String),
        f("Credit_Limit__c", T::Currency),
        f("Open_Balance__c", T::Currency),
        f("Customer_Tier__c", T::Picklist)
            .pick(&["Gold", "Silver", "Bronze"])
            .restricted(),
    ]);
    objects.push(ObjectDef::new("Account", "001", true, account));

    let mut contact = vec![
        f("LastName", T::String).len(80).req(),
        f("FirstName", T::String).len(40),
        f("Name", T::String).len(121).calc(),
        f("AccountId", T::Reference).to("Account"),
        f("Email", T::Email).len(80),
        f("Phone", T::Phone).len(40),
    ];
    contact.extend(address("Mailing"));
    objects.push(ObjectDef::new("Contact", "003", true, contact));

    objects.push(
        ObjectDef::new(
            "User",
            "005",
            false,
            vec![
                f("Username", T::String).len(80).req(),
                f("FirstName", T::String).len(40),
                f("LastName", T::String).len(80).req(),
                f("Name", T::String).len(121).calc(),
                f("Email", T::Email).len(128).req(),
                f("Alias", T::String).len(8),
                f("IsActive", T::Boolean),
                f("TimeZoneSidKey", T::Picklist).pick(&["GMT", "America/New_York"]),
                f("LanguageLocaleKey", T::Picklist).pick(&["en_US"]),
            ],
        )
        .read_only(),
    );

    objects.push(
        ObjectDef::new(
            "Organization",
            "00D",
            false,
            vec![
                f("Name", T::String).len(80),
                f("InstanceName", T::String).len(5),
                f("IsSandbox", T::Boolean),
                f("TrialExpirationDate", T::DateTime),
                f("NamespacePrefix", T::String).len(15),
                f("OrganizationType", T::Picklist)
                    .pick(&["Developer Edition", "Enterprise Edition"]),
                f("DefaultLocaleSidKey", T::Picklist).pick(&["en_US"]),
                f("TimeZoneSidKey", T::Picklist).pick(&["GMT"]),
            ],
        )
        .read_only(),
    );

    objects.push(ObjectDef::new(
        "Product2",
        "01t",
        false,
        vec![
            f("Name", T::String).req(),
            f("ProductCode", T::String),
            f("Description", T::TextArea).len(4000),
            f("Family", T::Picklist).pick(&["Apparel", "Footwear", "Accessories", "Other"]),
            f("IsActive", T::Boolean),
            f("StockKeepingUnit", T::String),
            f("QuantityUnitOfMeasure", T::Picklist).pick(&["Each", "Box", "Pair"]),
            f("ExternalId", T::String).ext_not_unique(),
            f("ERP_Item_Code__c", T::String).ext(),
            f("Available_Quantity__c", T::Double),
            f("Availability_As_Of__c", T::DateTime),
        ],
    ));

    objects.push(ObjectDef::new(
        "Pricebook2",
        "01s",
        false,
        vec![
            f("Name", T::String).req(),
            f("IsActive", T::Boolean),
            f("IsStandard", T::Boolean).ro(),
            f("Description", T::String),
        ],
    ));

    objects.push(ObjectDef::new(
        "PricebookEntry",
        "01u",
        false,
        vec![
            f("Name", T::String).calc(),
            f("Pricebook2Id", T::Reference)
                .to("Pricebook2")
                .req()
                .create_only(),
            f("Product2Id", T::Reference)
                .to("Product2")
                .req()
                .create_only(),
            f("UnitPrice", T::Currency).req(),
            f("IsActive", T::Boolean),
            f("UseStandardPrice", T::Boolean),
            f("ProductCode", T::String).calc(),
        ],
    ));

    let mut order = vec![
        f("AccountId", T::Reference).to("Account").req(),
        f("EffectiveDate", T::Date).req(),
        f("EndDate", T::Date),
        f("Status", T::Picklist)
            .pick(&["Draft", "Activated"])
            .restricted()
            .req(),
        f("StatusCode", T::Picklist)
            .pick(&["Draft", "Activated"])
            .calc(),
        f("Pricebook2Id", T::Reference).to("Pricebook2"),
        f("OrderNumber", T::String).len(30).calc(),
        f("TotalAmount", T::Currency).calc(),
        f("Type", T::Picklist).pick(&["New", "Reorder", "Return"]),
        f("PoNumber", T::String).len(80),
        f("Description", T::TextArea),
        f("ActivatedDate", T::DateTime).ro(),
        f("ActivatedById", T::Reference).to("User").ro(),
        f("BillToContactId", T::Reference).to("Contact"),
        f("ShipToContactId", T::Reference).to("Contact"),
    ];
    order.extend(address("Billing"));
    order.extend(address("Shipping"));
    order.extend([
        f("OriginalOrderId", T::Reference).to("Order").create_only(),
        f("IsReductionOrder", T::Boolean).create_only(),
        f("Hub_Order_Id__c", T::String).ext(),
        f("ERP_Order_Number__c", T::String).ext(),
        f("Hub_Status__c", T::String),
        f("Hub_Status_Reason__c", T::TextArea),
        f("Fulfillment_Status__c", T::String),
        f("Tracking_Numbers__c", T::TextArea),
        f("Invoice_Number__c", T::String),
        f("Invoice_Status__c", T::String),
        f("Payment_Status__c", T::String),
        f("Amount_Invoiced__c", T::Currency),
        f("Amount_Paid__c", T::Currency),
        f("Credit_Memo_Number__c", T::String),
        f("Hub_Synced_At__c", T::DateTime),
        f("Sales_Channel__c", T::String),
        // Set by Salesforce users to ask for a cancellation; the hub listens for them in CDC.
        f("Cancel_Requested__c", T::Boolean),
        f("Cancel_Reason__c", T::String).len(255),
    ]);
    objects.push(ObjectDef::new("Order", "801", true, order));

    objects.push(ObjectDef::new(
        "OrderItem",
        "802",
        false,
        vec![
            f("OrderId", T::Reference).to("Order").req().create_only(),
            f("PricebookEntryId", T::Reference)
                .to("PricebookEntry")
                .req()
                .create_only(),
            f("Product2Id", T::Reference).to("Product2").create_only(),
            f("Quantity", T::Double).req(),
            f("UnitPrice", T::Currency).req(),
            f("ListPrice", T::Currency).calc(),
            f("TotalPrice", T::Currency).calc(),
            f("OrderItemNumber", T::String).len(30).calc(),
            f("Description", T::String),
            f("ServiceDate", T::Date),
            f("EndDate", T::Date),
            f("AvailableQuantity", T::Double).calc(),
            f("OriginalOrderItemId", T::Reference)
                .to("OrderItem")
                .create_only(),
            f("Hub_Line_Key__c", T::String).ext(),
            f("Quantity_Allocated__c", T::Double),
            f("Quantity_Backordered__c", T::Double),
            f("Quantity_Shipped__c", T::Double),
            f("Quantity_Delivered__c", T::Double),
            f("Quantity_Invoiced__c", T::Double),
            f("Quantity_Returned__c", T::Double),
        ],
    ));

    objects.push(ObjectDef::new(
        "Case",
        "500",
        true,
        vec![
            f("CaseNumber", T::String).len(30).calc(),
            f("Subject", T::String),
            f("Description", T::TextArea),
            f("Status", T::Picklist)
                .pick(&["New", "Working", "Escalated", "Closed"])
                .restricted()
                .default("New"),
            f("Origin", T::Picklist).pick(&["Phone", "Email", "Web"]),
            f("Priority", T::Picklist)
                .pick(&["High", "Medium", "Low"])
                .default("Medium"),
            f("Reason", T::Picklist).pick(&["Damaged", "Wrong Item", "Other"]),
            f("Type", T::Picklist).pick(&["Return", "Question", "Problem"]),
            f("AccountId", T::Reference).to("Account"),
            f("ContactId", T::Reference).to("Contact"),
            f("ParentId", T::Reference).to("Case"),
            f("IsClosed", T::Boolean).calc(),
            f("ClosedDate", T::DateTime).calc(),
            f("Order__c", T::Reference).to("Order"),
            f("RMA_Number__c", T::String).ext(),
            f("Return_Status__c", T::String),
            f("Return_Lines__c", T::TextArea),
            f("Credit_Memo_Number__c", T::String),
            f("Refund_Status__c", T::String),
            f("Refund_Amount__c", T::Currency),
        ],
    ));

    let mut fulfillment = vec![
        f("FulfillmentOrderNumber", T::String).len(30).calc(),
        f("OrderSummaryId", T::Reference).to("OrderSummary"),
        f("OrderId", T::Reference).to("Order"),
        f("AccountId", T::Reference).to("Account"),
        f("FulfilledFromLocationId", T::Reference).to("Location"),
        f("FulfilledToName", T::String),
    ];
    fulfillment.extend(address("FulfilledTo"));
    fulfillment.extend([
        f("DeliveryMethodId", T::Reference).to("OrderDeliveryMethod"),
        f("Type", T::Picklist).pick(&["Warehouse", "Retail Store", "Drop Ship"]),
        f("Status", T::Picklist)
            .pick(&[
                "Allocated",
                "Assigned",
                "Pick Complete",
                "Pack Complete",
                "Fulfilled",
                "Cancelled",
            ])
            .restricted()
            .default("Allocated"),
        f("StatusCategory", T::Picklist)
            .pick(&["Draft", "Activated", "Fulfilled", "Cancelled", "Rejected"])
            .calc(),
        f("ItemCount", T::Double),
        f("TotalProductAmount", T::Currency),
        hub_key(),
    ]);
    objects.push(ObjectDef::new("FulfillmentOrder", "0a3", true, fulfillment));

    objects.push(ObjectDef::new(
        "FulfillmentOrderLineItem",
        "0a4",
        false,
        vec![
            f("FulfillmentOrderLineItemNumber", T::String)
                .len(30)
                .calc(),
            f("FulfillmentOrderId", T::Reference)
                .to("FulfillmentOrder")
                .req()
                .create_only(),
            f("OrderItemSummaryId", T::Reference).to("OrderItemSummary"),
            f("OrderItemId", T::Reference).to("OrderItem"),
            f("Product2Id", T::Reference).to("Product2"),
            f("Quantity", T::Double),
            f("OriginalQuantity", T::Double),
            f("QuantityUnitOfMeasure", T::String),
            f("TypeCode", T::Picklist)
                .pick(&["Product", "Charge"])
                .restricted()
                .default("Product"),
            f("UnitPrice", T::Currency),
            f("TotalPrice", T::Currency),
            hub_key(),
        ],
    ));

    let mut shipment = vec![
        f("ShipmentNumber", T::String).len(30).calc(),
        f("FulfillmentOrderId", T::Reference).to("FulfillmentOrder"),
        f("OrderSummaryId", T::Reference).to("OrderSummary"),
        f("OrderId", T::Reference).to("Order"),
        f("TrackingNumber", T::String),
        f("TrackingUrl", T::Url),
        f("Provider", T::String),
        f("ShipToName", T::String),
    ];
    shipment.extend(address("ShipTo"));
    shipment.extend([
        f("ExpectedDeliveryDate", T::DateTime),
        f("ActualDeliveryDate", T::DateTime),
        f("Status", T::Picklist)
            .pick(&["Shipped", "In Transit", "Delivered", "Canceled"])
            .restricted(),
        hub_key(),
    ]);
    objects.push(ObjectDef::new("Shipment", "0OB", true, shipment));

    objects.push(ObjectDef::new(
        "ShipmentItem",
        "0OC",
        false,
        vec![
            f("ShipmentItemNumber", T::String).len(30).calc(),
            f("ShipmentId", T::Reference)
                .to("Shipment")
                .req()
                .create_only(),
            f("FulfillmentOrderLineItemId", T::Reference).to("FulfillmentOrderLineItem"),
            f("OrderItemId", T::Reference).to("OrderItem"),
            f("Product2Id", T::Reference).to("Product2"),
            f("Quantity", T::Double).req(),
            hub_key(),
        ],
    ));

    objects.push(ObjectDef::new(
        "ReturnOrder",
        "0YS",
        true,
        vec![
            f("ReturnOrderNumber", T::String).len(30).calc(),
            f("OrderSummaryId", T::Reference).to("OrderSummary"),
            f("OrderId", T::Reference).to("Order"),
            f("AccountId", T::Reference).to("Account"),
            f("CaseId", T::Reference).to("Case"),
            f("SourceLocationId", T::Reference).to("Location"),
            f("DestinationLocationId", T::Reference).to("Location"),
            f("Status", T::Picklist)
                .pick(&["Draft", "Submitted", "Approved", "Canceled", "Closed"])
                .restricted()
                .default("Draft"),
            f("Description", T::TextArea),
            hub_key(),
        ],
    ));

    objects.push(ObjectDef::new(
        "ReturnOrderLineItem",
        "0YT",
        false,
        vec![
            f("ReturnOrderLineItemNumber", T::String).len(30).calc(),
            f("ReturnOrderId", T::Reference)
                .to("ReturnOrder")
                .req()
                .create_only(),
            f("OrderItemSummaryId", T::Reference).to("OrderItemSummary"),
            f("OrderItemId", T::Reference).to("OrderItem"),
            f("Product2Id", T::Reference).to("Product2"),
            f("QuantityExpected", T::Double),
            f("QuantityReceived", T::Double),
            f("QuantityReturned", T::Double),
            f("QuantityRejected", T::Double),
            f("ReasonForReturn", T::Picklist).pick(&["Damaged", "Wrong Item", "Not Needed"]),
            hub_key(),
        ],
    ));

    for (name, prefix, date_field) in [
        ("Invoice", "3tt", "InvoiceDate"),
        ("CreditMemo", "50g", "CreditDate"),
    ] {
        let mut fields = vec![
            f("DocumentNumber", T::String).len(30).calc(),
            f("BillingAccountId", T::Reference).to("Account"),
            f("ReferenceEntityId", T::Reference).to("Order"),
            f(date_field, T::Date),
        ];
        if name == "Invoice" {
            fields.push(f("DueDate", T::Date));
        }
        fields.extend([
            f("TotalAmount", T::Currency),
            f("TotalTaxAmount", T::Currency),
            f("TotalAmountWithTax", T::Currency),
            f("Balance", T::Currency),
            f("Status", T::Picklist)
                .pick(&["Draft", "Posted"])
                .restricted()
                .default("Draft"),
            hub_key(),
        ]);
        objects.push(ObjectDef::new(name, prefix, true, fields));
    }

    let mut inventory = ObjectDef::new(
        "Inventory_Level__c",
        "a0I",
        true,
        vec![
            f("Name", T::String).len(80),
            hub_key(),
            f("Product__c", T::Reference).to("Product2"),
            f("Location__c", T::String),
            f("Available__c", T::Double),
            f("On_Hand__c", T::Double),
            f("As_Of__c", T::DateTime),
        ],
    );
    inventory.label = "Inventory Level".into();
    inventory.label_plural = "Inventory Levels".into();
    objects.push(inventory);

    let mut shipped = ObjectDef::new(
        "Order_Shipped__e",
        "e00",
        false,
        vec![
            f("Order_Number__c", T::String),
            f("Tracking_Number__c", T::String),
            f("Carrier__c", T::String),
            f("Shipped_At__c", T::DateTime),
        ],
    );
    shipped.kind = Kind::PlatformEvent;
    shipped.updateable = false;
    shipped.deletable = false;
    objects.push(shipped);

    let mut meta = Metadata {
        objects,
        index: HashMap::new(),
        prefixes: HashMap::new(),
    };
    meta.reindex();
    meta
}

/// Builds a custom field declaration for a run-time schema change.
pub fn custom_field(name: &str, ty: FieldType) -> FieldDef {
    FieldDef::new(name, ty)
}

/// Parses a describe type name.
pub fn parse_type(name: &str) -> Option<FieldType> {
    Some(match name {
        "string" => T::String,
        "textarea" => T::TextArea,
        "picklist" => T::Picklist,
        "boolean" => T::Boolean,
        "currency" => T::Currency,
        "double" => T::Double,
        "percent" => T::Percent,
        "int" => T::Int,
        "date" => T::Date,
        "datetime" => T::DateTime,
        "email" => T::Email,
        "phone" => T::Phone,
        "url" => T::Url,
        _ => return None,
    })
}
