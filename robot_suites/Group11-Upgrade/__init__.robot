*** Settings ***
Documentation       Group 11, upgrade: a VCH of the older release vic-ref ships (``Start Old VCH``: the embedded sim
...                 and ``vic-ref up --appliance-version``, which deploys with vic-machine create's code), upgraded
...                 and rolled back with vic-machine. Only for the embedded target.
Library             ../libraries/VicRef.py
Suite Setup         Start Old VCH With Busybox
Suite Teardown      Stop VCH


*** Keywords ***
Start Old VCH With Busybox
    Start Old VCH
    ${image}=    Busybox Image
    Docker Should Succeed    pull    ${image}
    Set Suite Variable    ${BUSYBOX}    ${image}    children=${True}
