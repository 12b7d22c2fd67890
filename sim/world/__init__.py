"""The physical world around the systems: supplier, warehouse and carrier SimPy processes."""
