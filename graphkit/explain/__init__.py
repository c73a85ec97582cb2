"""graphkit.explain"""
