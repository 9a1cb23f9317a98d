#!/usr/bin/env python3
"""Seed a freshly activated crossdock Tryton database.

Runs in-process through proteus against the database that
``trytond-admin`` has just initialised (see scripts/setup/tryton.sh), as the
``admin`` user, and creates everything the crossdock Tryton adapter and its
tests rely on:

* USD and the United States, the company "Crossdock Retail Inc.";
* the universal chart of accounts, fiscal years (previous, current, next)
  with strict invoice (``INV<year>-``) and credit-note (``CN<year>-``)
  sequences, a 10 % sales tax, a cash payment method;
* a product category and products ``SKU-0001`` … with list prices;
* two warehouses (``WH`` and ``WH2``) with on-hand stock from confirmed
  inventories (``SKU-0002`` deliberately low in ``WH`` and absent in
  ``WH2``, for backorder scenarios);
* customers ``ACC-0001`` … (``ACC-0002`` with a -10 % price list,
  ``ACC-0003`` "Tight Credit Boutique" with a 100.00 credit limit);
* sale complaint types;
* the integration user ``crossdock`` with every group except
  "Administration" and "Credit Limit" (so a credit-limit breach is a hard
  error for it, not a warning).

Prints a JSON summary of the ids the adapter needs to stdout.
"""

import argparse
import datetime
import json
import sys
from decimal import Decimal

from proteus import Model, Wizard, config

PRODUCT_COUNT = 36
# SKU index -> on-hand quantity in WH (everything else: DEFAULT_WH_QUANTITY).
WH_OVERRIDES = {2: 5}
DEFAULT_WH_QUANTITY = 500
# WH2 holds the first WH2_PRODUCTS SKUs, except SKU-0002.
WH2_PRODUCTS = 18
WH2_QUANTITY = 200

CUSTOMERS = [
    # code, name, city, postal code, extra
    ('ACC-0001', 'Acme Outdoor Supply', 'Denver', '80202', {}),
    ('ACC-0002', 'Northwind Outfitters', 'Seattle', '98101',
        {'price_list': True}),
    ('ACC-0003', 'Tight Credit Boutique', 'Austin', '73301',
        {'credit_limit': Decimal('100.00')}),
    ('ACC-0004', 'Harbor Street Goods', 'Boston', '02108', {}),
    ('ACC-0005', 'Prairie Home Store', 'Omaha', '68102', {}),
    ('ACC-0006', 'Summit Sports Co.', 'Salt Lake City', '84101', {}),
    ('ACC-0007', 'Bayside Market', 'San Diego', '92101', {}),
    ('ACC-0008', 'Lakeside Apparel', 'Chicago', '60601', {}),
    ('ACC-0009', 'Riverbend Traders', 'Memphis', '37501', {}),
    ('ACC-0010', 'Canyon Trail Shop', 'Phoenix', '85001', {}),
    ('ACC-0011', 'Maple Leaf Retail', 'Burlington', '05401', {}),
    ('ACC-0012', 'Golden Gate Goods', 'San Francisco', '94102', {}),
]

PRODUCT_NAMES = [
    'Trail Hoodie', 'Rain Shell', 'Wool Beanie', 'Canvas Tote',
    'Hiking Sock', 'Fleece Vest', 'Camp Mug', 'Water Bottle',
    'Day Pack', 'Trucker Cap', 'Down Jacket', 'Base Layer Top',
    'Base Layer Bottom', 'Work Glove', 'Rain Pant', 'Sun Hat',
    'Headlamp', 'Trekking Pole', 'Dry Bag', 'Camp Chair',
    'Sleeping Bag', 'Sleeping Pad', 'Tent Footprint', 'Stove Fuel',
    'First Aid Kit', 'Compass', 'Map Case', 'Gaiter',
    'Buff Scarf', 'Insulated Glove', 'Thermal Flask', 'Cargo Short',
    'Flannel Shirt', 'Chore Coat', 'Belt Bag', 'Bandana',
]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', required=True, help='trytond.conf')
    parser.add_argument('--database', required=True)
    parser.add_argument(
        '--password-file', required=True,
        help='file holding the password of the integration user')
    parser.add_argument('--login', default='crossdock')
    return parser.parse_args()


def list_price(index):
    "A deterministic spread of list prices between 9.90 and 199.00."
    return (Decimal(index * 7 % 40) * Decimal('4.75') + Decimal('9.90')
        ).quantize(Decimal('0.01'))


def one(records, what):
    if len(records) != 1:
        sys.exit('seed: expected exactly one %s, found %d'
            % (what, len(records)))
    return records[0]


def main():
    args = parse_args()
    with open(args.password_file) as handle:
        password = handle.read().strip()
    cfg = config.set_trytond(
        database=args.database, config_file=args.config)

    Currency = Model.get('currency.currency')
    CurrencyRate = Model.get('currency.currency.rate')
    Country = Model.get('country.country')
    Party = Model.get('party.party')
    User = Model.get('res.user')
    Group = Model.get('res.group')
    ModelData = Model.get('ir.model.data')
    IrModel = Model.get('ir.model')

    # Currency and country: Tryton ships none.
    usd = Currency(name='U.S. Dollar', code='USD', symbol='$',
        rounding=Decimal('0.01'), digits=2)
    usd.save()
    CurrencyRate(date=datetime.date(2000, 1, 1), rate=Decimal('1'),
        currency=usd).save()
    us = Country(name='United States', code='US', code3='USA',
        code_numeric='840')
    us.save()

    # Company, then reload the context so that it carries the company.
    company_party = Party(name='Crossdock Retail Inc.')
    company_party.addresses[0].street = '1 Dock Street'
    company_party.addresses[0].city = 'Portland'
    company_party.addresses[0].postal_code = '97201'
    company_party.addresses[0].country = us
    company_party.save()
    company_config = Wizard('company.company.config')
    company_config.execute('company')
    company_config.form.party = company_party
    company_config.form.currency = usd
    company_config.execute('add')
    cfg._context = User.get_preferences(True, {})
    Company = Model.get('company.company')
    company = one(Company.find([]), 'company')

    # Chart of accounts.
    AccountTemplate = Model.get('account.account.template')
    Account = Model.get('account.account')
    template = AccountTemplate(ModelData.get_id(
            'account', 'account_template_root_en', cfg.context))
    create_chart = Wizard('account.create_chart')
    create_chart.execute('account')
    create_chart.form.account_template = template
    create_chart.form.company = company
    create_chart.execute('create_account')

    def account(domain, what):
        return Account.find(
            [('company', '=', company.id), ('closed', '!=', True)] + domain,
            limit=1) or sys.exit('seed: no %s account' % what)

    receivable, = account([('type.receivable', '=', True),
            ('party_required', '=', True)], 'receivable')
    payable, = account([('type.payable', '=', True),
            ('party_required', '=', True)], 'payable')
    revenue, = account([('type.revenue', '=', True)], 'revenue')
    expense, = account([('type.expense', '=', True)], 'expense')
    cash, = account([('code', '=', '1.1.1')], 'cash')
    tax_account, = account([('code', '=', '6.3.6')], 'tax')
    create_chart.form.account_receivable = receivable
    create_chart.form.account_payable = payable
    create_chart.form.category_account_revenue = revenue
    create_chart.form.category_account_expense = expense
    create_chart.execute('create_properties')

    # Fiscal years with strict move, invoice and credit-note sequences.
    FiscalYear = Model.get('account.fiscalyear')
    SequenceStrict = Model.get('ir.sequence.strict')
    SequenceType = Model.get('ir.sequence.type')
    move_type = one(SequenceType.find([('name', '=', 'Account Move')]),
        'sequence type "Account Move"')
    invoice_type = one(SequenceType.find([('name', '=', 'Invoice')]),
        'sequence type "Invoice"')
    this_year = datetime.date.today().year
    for year in (this_year - 1, this_year, this_year + 1):
        move_sequence = SequenceStrict(name='Moves %d' % year,
            sequence_type=move_type, company=company)
        move_sequence.save()
        invoice_sequence = SequenceStrict(name='Invoices %d' % year,
            sequence_type=invoice_type, company=company,
            prefix='INV%d-' % year, padding=5)
        invoice_sequence.save()
        credit_sequence = SequenceStrict(name='Credit notes %d' % year,
            sequence_type=invoice_type, company=company,
            prefix='CN%d-' % year, padding=5)
        credit_sequence.save()
        fiscalyear = FiscalYear(name=str(year),
            start_date=datetime.date(year, 1, 1),
            end_date=datetime.date(year, 12, 31),
            company=company, move_sequence=move_sequence)
        sequences, = fiscalyear.invoice_sequences
        sequences.out_invoice_sequence = invoice_sequence
        sequences.out_credit_note_sequence = credit_sequence
        sequences.in_invoice_sequence = invoice_sequence
        sequences.in_credit_note_sequence = credit_sequence
        fiscalyear.save()
        fiscalyear.click('create_period')

    # Sales tax.
    Tax = Model.get('account.tax')
    tax = Tax(name='Sales Tax 10%', description='Sales Tax 10%',
        type='percentage', rate=Decimal('0.10'),
        invoice_account=tax_account, credit_note_account=tax_account)
    tax.save()

    # Payment method used by the pay wizard (payments and refunds).
    Journal = Model.get('account.journal')
    PaymentMethod = Model.get('account.invoice.payment.method')
    cash_journal = one(Journal.find([('type', '=', 'cash')]), 'cash journal')
    payment_method = PaymentMethod(name='Cash', company=company,
        journal=cash_journal, debit_account=cash, credit_account=cash)
    payment_method.save()

    PaymentTerm = Model.get('account.invoice.payment_term')
    net30 = one(PaymentTerm.find([('name', '=', 'Net 30 days')]),
        'payment term "Net 30 days"')

    # Catalog.
    Uom = Model.get('product.uom')
    unit = one(Uom.find([('name', '=', 'Unit')]), 'unit of measure "Unit"')
    Category = Model.get('product.category')
    category = Category(name='Retail Goods', accounting=True,
        account_revenue=revenue, account_expense=expense)
    category.customer_taxes.append(Tax(tax.id))
    category.save()
    Template = Model.get('product.template')
    products = {}
    for index in range(1, PRODUCT_COUNT + 1):
        sku = 'SKU-%04d' % index
        template = Template(name=PRODUCT_NAMES[index - 1], code=sku,
            type='goods', salable=True, default_uom=unit, sale_uom=unit,
            list_price=list_price(index), account_category=category)
        template.save()
        product, = template.products
        products[sku] = product

    # Warehouses: WH exists; WH2 gets its own zones and lost and found.
    Location = Model.get('stock.location')
    wh = one(Location.find([('code', '=', 'WH'), ('type', '=', 'warehouse')]),
        'warehouse WH')
    wh.name = 'East Warehouse'
    wh.save()
    zones = {}
    for code, name in [('IN2', 'Input Zone 2'), ('OUT2', 'Output Zone 2'),
            ('STO2', 'Storage Zone 2')]:
        zones[code] = Location(name=name, code=code, type='storage')
        zones[code].save()
    lost_found2 = Location(name='Lost and Found 2', type='lost_found')
    lost_found2.save()
    wh2 = Location(name='West Warehouse', code='WH2', type='warehouse',
        input_location=zones['IN2'], output_location=zones['OUT2'],
        storage_location=zones['STO2'], lost_found_location=lost_found2)
    wh2.save()

    # On-hand stock through confirmed inventories.
    Inventory = Model.get('stock.inventory')
    stock_plan = [
        (wh, {sku: WH_OVERRIDES.get(i, DEFAULT_WH_QUANTITY)
                for i, sku in enumerate(sorted(products), 1)}),
        (wh2, {sku: WH2_QUANTITY
                for i, sku in enumerate(sorted(products), 1)
                if i <= WH2_PRODUCTS and i not in WH_OVERRIDES}),
    ]
    for warehouse, quantities in stock_plan:
        inventory = Inventory(location=warehouse.storage_location,
            company=company)
        for sku, quantity in quantities.items():
            inventory.lines.new(product=products[sku],
                quantity=float(quantity))
        inventory.save()
        inventory.click('confirm')

    # Customer-specific price list.
    PriceList = Model.get('product.price_list')
    partner_list = PriceList(name='Partner -10%', company=company,
        price='list_price')
    partner_list.lines.new(formula='unit_price * 0.9')
    partner_list.save()

    customers = {}
    for code, name, city, postal_code, extra in CUSTOMERS:
        party = Party(name=name, code=code)
        address = party.addresses[0]
        address.street = '%d Commerce Way' % (100 + len(customers))
        address.city = city
        address.postal_code = postal_code
        address.country = us
        party.customer_payment_term = net30
        if extra.get('price_list'):
            party.sale_price_list = partner_list
        if 'credit_limit' in extra:
            party.credit_limit_amount = extra['credit_limit']
        party.save()
        customers[code] = party.id

    # Complaint (RMA) types.
    ComplaintType = Model.get('sale.complaint.type')
    complaint_types = {}
    for name, model in [('Order return', 'sale.sale'),
            ('Line return', 'sale.line'),
            ('Invoice credit', 'account.invoice')]:
        origin = one(IrModel.find([('name', '=', model)]),
            'ir.model %s' % model)
        complaint_type = ComplaintType(name=name, origin=origin)
        complaint_type.save()
        complaint_types[model] = complaint_type.id

    # Integration user: every group but Administration and Credit Limit.
    excluded = {
        ModelData.get_id('res', 'group_admin', cfg.context),
        ModelData.get_id(
            'account_credit_limit', 'group_credit_limit', cfg.context),
    }
    Employee = Model.get('company.employee')
    employee_party = Party(name='Crossdock Integration')
    employee_party.save()
    employee = Employee(party=employee_party, company=company)
    employee.save()
    user = User(name='Crossdock Integration', login=args.login)
    user.password = password
    for group in Group.find([('id', 'not in', list(excluded))]):
        user.groups.append(group)
    user.companies.append(Company(company.id))
    user.company = Company(company.id)
    user.employees.append(Employee(employee.id))
    user.employee = Employee(employee.id)
    user.save()

    json.dump({
            'company': company.id,
            'currency': usd.id,
            'country': us.id,
            'tax': tax.id,
            'payment_method': payment_method.id,
            'payment_term': net30.id,
            'price_list': partner_list.id,
            'warehouses': {'WH': wh.id, 'WH2': wh2.id},
            'customers': customers,
            'products': {sku: p.id for sku, p in sorted(products.items())},
            'complaint_types': complaint_types,
            'user': user.id,
            }, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
