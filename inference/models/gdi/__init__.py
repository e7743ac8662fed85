"""Clinical gait indices: GVS, GPS (Baker 2009) and GDI (Schwartz & Rozumalski 2008), with the
normative curves and the fitted GDI basis they need (card: gdi.md)."""
