"""graphkit.vision"""
