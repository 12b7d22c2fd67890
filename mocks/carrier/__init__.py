"""Mock parcel carrier (UPS-like dialect): rates, labels and tracking fed by the carrier network."""

from mocks.carrier.core import CarrierCore

__all__ = ["CarrierCore"]
