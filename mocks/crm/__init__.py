"""Mock CRM (Salesforce-like dialect): accounts, contacts, orders with status history."""

from mocks.crm.core import CrmCore

__all__ = ["CrmCore"]
