"""Drives simple-salesforce against the simulator and prints what it got back as JSON.

Environment: SIM (https base URL), TOKEN (access token), REQUESTS_CA_BUNDLE (simulator CA),
CONSUMER_KEY, USERNAME, PASSWORD, SECURITY_TOKEN, JWT_KEY_FILE (PEM private key), ROWS.
"""
import json
import os
import re
import sys

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

SIM = os.environ["SIM"]
out = {}

sf = Salesforce(instance_url=SIM, session_id=os.environ["TOKEN"], version="60.0")

created = sf.Account.create({"Name": "Py Account", "ERP_Customer_Number__c": "PY-1"})
out["created"] = created
account_id = created["id"]
out["read_name"] = sf.Account.get(account_id)["Name"]
out["update_status"] = sf.Account.update(account_id, {"Phone": "555-0199", "Customer_Tier__c": "Gold"})
out["read_by_ext"] = sf.Account.get_by_custom_id("ERP_Customer_Number__c", "PY-1")["Id"]
out["upsert_statuses"] = [
    sf.Account.upsert("ERP_Customer_Number__c/PY-2", {"Name": "Py Upserted"}),
    sf.Account.upsert("ERP_Customer_Number__c/PY-2", {"Name": "Py Upserted Again"}),
]
try:
    sf.Account.create({"Name": "dup", "ERP_Customer_Number__c": "PY-1"})
    out["duplicate_error"] = None
except SalesforceMalformedRequest as e:
    out["duplicate_error"] = e.content[0]["errorCode"]

result = sf.query_all("SELECT Id, Name FROM Account WHERE Name LIKE 'Bulk %'")
out["query_total"] = result["totalSize"]
out["query_records"] = len(result["records"])
out["query_distinct"] = len({r["Id"] for r in result["records"]})
out["aggregate"] = sf.query("SELECT COUNT(Id) n, MAX(Name) FROM Account WHERE Name LIKE 'Bulk %' AND CreatedDate = TODAY")["records"]
out["with_children"] = sf.query("SELECT Name, (SELECT Id FROM Contacts) FROM Account WHERE Name = 'Py Account'")["records"]

collection = sf.restful(
    "composite/sobjects",
    method="POST",
    json={
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Contact"}, "LastName": "Py One", "AccountId": account_id},
            {"attributes": {"type": "Contact"}, "FirstName": "missing last name"},
        ],
    },
)
out["collection"] = collection
out["api_usage"] = {k: [v.used, v.total] for k, v in sf.api_usage.items()}
sf.Account.delete(account_id)
out["deleted_visible"] = sf.query_all("SELECT Id, IsDeleted FROM Account WHERE Id = '%s'" % account_id, include_deleted=True)["records"][0]["IsDeleted"]


class ToSimulator(HTTPAdapter):
    """Sends the login calls (hard-coded to *.salesforce.com) to the simulator."""

    def send(self, request, **kw):
        request.url = re.sub(r"^https://[^/]*\.salesforce\.com", SIM, request.url)
        return super().send(request, **kw)


session = requests.Session()
session.mount("https://", ToSimulator())
jwt_sf = Salesforce(
    username=os.environ["USERNAME"],
    consumer_key=os.environ["CONSUMER_KEY"],
    privatekey_file=os.environ["JWT_KEY_FILE"],
    session=session,
    version="60.0",
)
out["jwt_instance"] = jwt_sf.sf_instance
out["jwt_org_rows"] = jwt_sf.query("SELECT Id, Name FROM Organization")["totalSize"]

soap_sf = Salesforce(
    username=os.environ["USERNAME"],
    password=os.environ["PASSWORD"],
    security_token=os.environ["SECURITY_TOKEN"],
    session=session,
    version="60.0",
)
out["soap_user_rows"] = soap_sf.query("SELECT Id, Username FROM User")["totalSize"]

json.dump(out, sys.stdout)
