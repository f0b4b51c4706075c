"""The product catalog the service ships with: real IVIG and SCIG products, their makers and GTIN presentations."""
