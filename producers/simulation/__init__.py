"""Synthetic card-transaction stream with labelled fraud and scripted drift.

The world follows the design of the transaction simulator described in the Fraud
Detection Handbook (chapter 3.2): customers and terminals on a 100 x 100 map,
customers paying at terminals within a radius, a Poisson number of transactions a
day around midday, normal amounts around each customer's mean, and three fraud
scenarios (large amounts, compromised terminals, leaked cards). On top of it,
:mod:`producers.simulation.drift` scripts changes from a chosen day on.
"""
