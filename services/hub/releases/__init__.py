"""Released queries per agreement: their definitions (differencing) and privacy budget."""
