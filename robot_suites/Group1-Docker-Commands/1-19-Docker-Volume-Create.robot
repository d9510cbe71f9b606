*** Settings ***
Documentation       1-19 docker volume create: names, drivers, stores, options, capacities as df shows them, image
...                 content copied into new volumes, and a volume held by a running container (after VIC's
...                 1-19-Docker-Volume-Create; mongo's volumes come from a busybox image with the same VOLUME lines).
Library             String
Library             ../libraries/VicRef.py
Suite Setup         Prepare Volume Suite
Suite Teardown      Finish Volume Suite
Test Timeout        2 minutes


*** Test Cases ***
Simple Docker Volume Create
    ${rc}    ${name}=    Run Docker    volume    create
    Should Be Equal As Integers    ${rc}    0
    Should Match Regexp    ${name}    ^[0-9a-f-]{36}$
    ${size}=    Size Of Volume In Container    -v    ${name}:/mydata
    Should Be Equal    ${size}    975.9M

Docker Volume Create Named Volume
    ${rc}    ${out}=    Run Docker    volume    create    --name\=v19-test
    Should Be Equal As Integers    ${rc}    0
    Should Be Equal    ${out}    v19-test
    ${size}=    Size Of Volume In Container    -v    v19-test:/mydata
    Should Be Equal    ${size}    975.9M

Docker Volume Create Anonymous Volume
    ${size}=    Size Of Volume In Container    -v    /mydata
    Should Be Equal    ${size}    975.9M

Docker Volume Create Image Volumes
    ${id}=    Docker Should Succeed    run    -d    ${MONGO}    sh    -c    df -Ph /data/db /data/configdb
    ${rc}=    Docker Should Succeed    wait    ${id}
    Should Be Equal    ${rc}    0
    ${out}=    Docker Should Succeed    logs    ${id}
    ${lines}=    Get Lines Containing String    ${out}    by-label
    Should Contain    ${lines}    975.9M
    Should Contain    ${lines}    /data/db
    Should Contain    ${lines}    /data/configdb
    [Teardown]    Run Docker    rm    -v    ${id}

Docker Volume Create Already Named Volume
    ${rc}    ${out}=    Run Docker    volume    create    --name\=v19-test
    Should Be Equal As Integers    ${rc}    1
    Should Contain    ${out}    Error response from daemon: A volume named v19-test already exists. Choose a different volume name.

Docker Volume Create Volume With Invalid Driver
    ${rc}    ${out}=    Run Docker    volume    create    -d    fakeDriver    --name\=v19-test2
    Should Be Equal As Integers    ${rc}    1
    Should Contain    ${out}    error looking up volume plugin fakeDriver: plugin not found

Docker Volume Create With Invalid Volume Store
    ${rc}    ${out}=    Run Docker    volume    create    --name\=v19-test3    --opt    VolumeStore\=fakeStore
    Should Be Equal As Integers    ${rc}    1
    Should Contain    ${out}    No volume store named (fakeStore) exists

Docker Volume Create With Invalid Option
    ${rc}    ${out}=    Run Docker    volume    create    --name\=v19-test3    --opt    bogus\=foo
    Should Be Equal As Integers    ${rc}    1
    Should Contain    ${out}    bogus is not a supported option

Docker Volume Create With Specific Capacity Any Case
    ${rc}    ${out}=    Run Docker    volume    create    --name\=v19-test4    --opt    cAPACITy\=10000
    Should Be Equal As Integers    ${rc}    0
    Should Be Equal    ${out}    v19-test4
    ${size}=    Size Of Volume In Container    -v    v19-test4:/mydata
    Should Be Equal    ${size}    9.5G

Docker Volume Create Large Volume Specifying Units
    Docker Should Succeed    volume    create    --name\=v19-unitsvol    --opt    Capacity\=100000
    ${size}=    Size Of Volume In Container    -v    v19-unitsvol:/mydata
    Should End With    ${size}    G
    ${value}=    Fetch From Left    ${size}    G
    Should Be True    ${value} >= 95.0
    [Teardown]    Run Docker    volume    rm    v19-unitsvol

Docker Volume Create With Decimal Units
    Docker Should Succeed    volume    create    --name\=v19-test10g    --opt    Capacity\=10G
    ${size}=    Size Of Volume In Container    -v    v19-test10g:/mydata
    Should Be Equal    ${size}    9.5G

Docker Volume Create With Zero Capacity
    ${rc}    ${out}=    Run Docker    volume    create    --name\=v19-test5    --opt    Capacity\=0
    Should Be Equal As Integers    ${rc}    1
    Should Contain    ${out}    Error response from daemon: bad driver value - Invalid size: 0

Docker Volume Create With Negative One Capacity
    ${rc}    ${out}=    Run Docker    volume    create    --name\=v19-test6    --opt    Capacity\=-1
    Should Be Equal As Integers    ${rc}    1
    Should Contain    ${out}    Error response from daemon: bad driver value - Invalid size: -1

Docker Volume Create With Capacity Too Big
    ${rc}    ${out}=    Run Docker    volume    create    --name\=v19-test7    --opt    Capacity\=9223372036854775808
    Should Be Equal As Integers    ${rc}    1
    Should Contain    ${out}    Error response from daemon: bad driver value - Capacity value too large: 9223372036854775808

Docker Volume Create With Capacity Exceeding Int Size
    ${rc}    ${out}=    Run Docker    volume    create    --name\=v19-test8    --opt    Capacity\=9999999999999999999
    Should Be Equal As Integers    ${rc}    1
    Should Contain    ${out}    Error response from daemon: bad driver value - Capacity value too large: 9999999999999999999

Docker Volume Create With Possibly Invalid Name
    ${rc}    ${out}=    Run Docker    volume    create    --name\=test???
    Should Be Equal As Integers    ${rc}    1
    Should Be Equal As Strings    ${out}    Error response from daemon: volume name "test???" includes invalid characters, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed

Docker Volume Verify Anonymous Volume Contains Base Image Files
    ${rc}    ${out}=    Run Docker    run    --rm    ${EXAMPLE}    ls    /etc/example
    Should Be Equal As Integers    ${rc}    0
    Should Contain    ${out}    thisshouldexist
    Should Contain    ${out}    testfile.txt
    ${rc}    ${out}=    Run Docker    run    --rm    ${EXAMPLE}    cat    /etc/example/testfile.txt
    Should Be Equal As Integers    ${rc}    0
    Should Contain    ${out}    TestFile

Docker Volume Verify Named Volume Contains Base Image Files
    Docker Should Succeed    run    --rm    -v    v19-test15:/etc/example    ${EXAMPLE}    true
    ${rc}    ${out}=    Run Docker    run    --rm    -v    v19-test15:/etc/example    ${EXAMPLE}
    ...    cat    /etc/example/testfile.txt
    Should Be Equal As Integers    ${rc}    0
    Should Contain    ${out}    TestFile
    ${rc}    ${out}=    Run Docker    run    --rm    -v    v19-test15:/mnt/test15    ${EXAMPLE}
    ...    cat    /mnt/test15/testfile.txt
    Should Be Equal As Integers    ${rc}    0
    Should Contain    ${out}    TestFile

Docker Volume Verify Files Are Not Copied Into A Non-Empty Volume
    Docker Should Succeed    run    --rm    -v    v19-test16:/etc/example    ${EXAMPLE}
    ...    sh    -c    echo TestFile2 >> /etc/example/testfile.txt
    ${rc}    ${out}=    Run Docker    run    --rm    -v    v19-test16:/etc/example    ${EXAMPLE}
    ...    cat    /etc/example/testfile.txt
    Should Be Equal As Integers    ${rc}    0
    Should Be Equal    ${out}    TestFile\nTestFile2

Docker Volume Conflict In New Container
    ${volume}=    Docker Should Succeed    volume    create
    ${first}=    Docker Should Succeed    run    -dit    -v    ${volume}:/mydata    ${BUSYBOX}
    ${rc}    ${out}=    Run Docker    run    -dit    --name    v19-conflict    -v    ${volume}:/mydata    ${BUSYBOX}
    Should Be Equal As Integers    ${rc}    125
    Should Contain    ${out}    Error response from daemon
    Should Contain    ${out}    device ${volume} in use
    [Teardown]    Run Docker    rm    -f    ${first}    v19-conflict

Docker Volume Create On An NFS Volume Store
    [Documentation]    VIC's case 16: an NFS store (by the machine's FQDN) added with vic-machine configure; a volume
    ...                on it round-trips file content. The server is Debian's nfs-ganesha, started here.
    ${url}=    Start NFS Server
    ${rc}    ${out}=    Run VIC Machine    configure    --name    vic-ref    --volume-store\=LocalDS_0/VIC:default
    ...    --volume-store\=${url}:nfsfqdn
    Should Be Equal As Integers    ${rc}    0
    Should Contain    ${out}    Completed successfully
    ${rc}    ${out}=    Run Docker    volume    create    --opt    VolumeStore\=nfsfqdn    --name\=v19-nfs
    Should Be Equal As Integers    ${rc}    0
    Should Be Equal    ${out}    v19-nfs
    Docker Should Succeed    run    --rm    -v    v19-nfs:/mydata    ${BUSYBOX}
    ...    sh    -c    echo 'Hello NFS' > /mydata/test.txt
    ${rc}    ${out}=    Run Docker    run    --rm    -v    v19-nfs:/mydata    ${BUSYBOX}    cat    /mydata/test.txt
    Should Be Equal As Integers    ${rc}    0
    Should Be Equal    ${out}    Hello NFS
    NFS Export File Should Contain    volumes/v19-nfs/test.txt    Hello NFS
    [Teardown]    Run Keywords    Run Docker    volume    rm    v19-nfs    AND    Stop NFS Server


*** Keywords ***
Prepare Volume Suite
    [Documentation]    The group's VCH (Start VCH is idempotent), busybox and the volume test images pulled.
    ${running}=    VCH Is Running
    Set Suite Variable    ${STARTED_HERE}    ${{not ${running}}}
    Start VCH
    ${image}=    Busybox Image
    Docker Should Succeed    pull    ${image}
    Set Suite Variable    ${BUSYBOX}    ${image}
    ${images}=    Push Volume Test Images
    Docker Should Succeed    pull    ${images}[vol-example]
    Docker Should Succeed    pull    ${images}[vol-mongo]
    Set Suite Variable    ${EXAMPLE}    ${images}[vol-example]
    Set Suite Variable    ${MONGO}    ${images}[vol-mongo]

Finish Volume Suite
    [Documentation]    Stop the VCH if this suite started it (run alone, not as part of the group).
    IF    ${STARTED_HERE}    Stop VCH

Size Of Volume In Container
    [Documentation]    `df -Ph /mydata` in a detached container with these -v options: the Size of the by-label line.
    [Arguments]    @{volume_args}
    ${id}=    Docker Should Succeed    run    -d    @{volume_args}    ${BUSYBOX}    /bin/df    -Ph    /mydata
    ${rc}=    Docker Should Succeed    wait    ${id}
    Should Be Equal    ${rc}    0
    ${out}=    Docker Should Succeed    logs    ${id}
    Docker Should Succeed    rm    ${id}
    ${line}=    Get Lines Containing String    ${out}    by-label
    @{fields}=    Split String    ${line}
    RETURN    ${fields}[1]
