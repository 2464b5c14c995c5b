"""What people read before deciding: version comparison, the auditor's sample, slices and
the model report.
"""
