"""Mock ERP (SAP/NetSuite-like dialect): OAuth2, customers and credit, items, prices, ATP, sales orders."""

from mocks.erp.core import DEFAULT_CLIENT_SECRET, ErpCore

__all__ = ["DEFAULT_CLIENT_SECRET", "ErpCore"]
