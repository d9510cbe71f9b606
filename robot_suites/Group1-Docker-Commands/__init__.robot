*** Settings ***
Documentation       Group 1, docker commands: run, logs, attach and exec against one VCH.
...
...                 The VCH is started once for the whole group (``Start VCH``: the embedded sim and a VCH, or the
...                 VCH that VIC_REF_DOCKER_HOST names) and the busybox test image is pulled into it here. The suites
...                 below use ``${BUSYBOX}``, the reference of that image.
Library             ../libraries/VicRef.py
Suite Setup         Start VCH With Busybox
Suite Teardown      Stop VCH


*** Keywords ***
Start VCH With Busybox
    Start VCH
    ${image}=    Busybox Image
    Docker Should Succeed    pull    ${image}
    Set Suite Variable    ${BUSYBOX}    ${image}    children=${True}
