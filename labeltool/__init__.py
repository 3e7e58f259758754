"""labeltool: error analysis for image classifiers, in Andrew Ng's tradition.

Load a classifier's dev-set predictions, let reviewers tag each misclassified example
with error categories, and rank the categories by their ceiling: how far the dev error
could fall at best if that category were fixed.
"""

__version__ = "0.1.0"
