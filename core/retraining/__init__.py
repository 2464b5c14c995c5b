"""retraining"""
