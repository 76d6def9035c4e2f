"""The analyses: tables computed after the fact from a study's runs and predictions (numpy, scipy, pandas;
no training code). Each is declared once in chaosgrid.plan.analyses, which planning reads torch-free."""
