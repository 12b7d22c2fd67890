"""Mock WMS (Manhattan-like dialect): fulfilment orders worked by the simulated warehouse floor."""

from mocks.wms.core import WmsCore

__all__ = ["WmsCore"]
