"""Offline stand-in for the pip bootstrap script that ansible-test downloads.

ansible-test sanity builds small venvs for some tests and bootstraps pip in them with
a script fetched from a host this machine cannot reach. setup.sh places this file in
ansible-test's cache instead: it installs pip with the standard library's ensurepip,
then the packages ansible-test asked for, from PyPI as usual.
"""
import subprocess
import sys

GET_PIP_ONLY_OPTIONS = ("--no-setuptools", "--no-wheel")

args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", "-q"] + args)
