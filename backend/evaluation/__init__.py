"""Evaluation: text-to-motion (the HumanML3D protocol), generator sanity, the LaFAN1 in-between
protocol, and preview pictures."""
